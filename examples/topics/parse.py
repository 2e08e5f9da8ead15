"""The pipeline's first agent (Python): takes an uploaded document, splits it into words, and hands the words to
the next agent by publishing them to the topic "document.parsed" (protocol 1.2 publish: ctx.publish)."""


def handle_request(payload, ctx):
    words = [word.strip(".,;:!?").lower() for word in str(payload.get("text", "")).split()]
    words = [word for word in words if word]
    ctx.publish("document.parsed", {"title": payload.get("title", "untitled"), "words": words})
    return {"parsed": len(words)}

"""A Python agent for the demo: the supervisor's Python adapter loads `handle_request` from this file."""
import asyncio


async def handle_request(event):
    # The demo sends {"type": "data", "payload": {"text": ...}}; a bare {"text": ...} (a `call` by hand) works too.
    payload = event.get("payload", event) if isinstance(event, dict) else {}
    text = str(payload.get("text", "")) if isinstance(payload, dict) else ""
    await asyncio.sleep(0.05)  # pretend to think
    words = text.split()
    return {"words": len(words), "summary": " ".join(words[:6]) + (" ..." if len(words) > 6 else "")}

"""A Python agent for the demo: the supervisor's Python adapter loads `handle_request` from this file."""
import asyncio


async def handle_request(event):
    text = event.get("payload", {}).get("text", "")
    await asyncio.sleep(0.05)  # pretend to think
    words = text.split()
    return {"words": len(words), "summary": " ".join(words[:6]) + (" ..." if len(words) > 6 else "")}

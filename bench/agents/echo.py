"""The benchmark's Python agent: the callback the Python adapter loads."""


def handle_request(payload):
    return payload

"""The official `openai` Python package against the service's OpenAI-compatible route.

Run by tests/python_client.rs with the base URL as argv[1] and the API key as argv[2].
Prints one JSON line per check; exits non-zero on the first failure.
"""
import json
import sys

import openai

base_url, api_key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url + "/v1", api_key=api_key, max_retries=0, timeout=30)


def report(name, **fields):
    print(json.dumps({"check": name, **fields}), flush=True)


# Non-streaming.
resp = client.chat.completions.create(
    model="support-v1",
    messages=[{"role": "user", "content": "Hello from the official client"}],
)
text = resp.choices[0].message.content
assert resp.object == "chat.completion", resp
assert "Hello from the official client" in text, text
assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
report("non_streaming", text=text, id=resp.id, model=resp.model)

# Streaming, with the usage chunk.
pieces, usage, finish = [], None, None
stream = client.chat.completions.create(
    model="support-v1",
    messages=[{"role": "user", "content": "Stream this answer please"}],
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
streamed = "".join(pieces)
assert "Stream this answer please" in streamed, streamed
assert len(pieces) > 1, pieces
assert finish == "stop", finish
assert usage is not None and usage.completion_tokens > 0, usage
report("streaming", chunks=len(pieces), text=streamed, finish=finish)

# Structured output: a JSON schema response format.
schema = {
    "type": "object",
    "properties": {
        "decision": {"type": "string", "enum": ["approve", "reject", "escalate"]},
        "confidence": {"type": "number"},
        "reasons": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["decision", "confidence", "reasons"],
    "additionalProperties": False,
}
resp = client.chat.completions.create(
    model="support-v1",
    messages=[{"role": "user", "content": "Refund for headphones bought 12 days ago?"}],
    response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema, "strict": True}},
)
verdict = json.loads(resp.choices[0].message.content)
assert set(verdict) == {"decision", "confidence", "reasons"}, verdict
assert verdict["decision"] in ("approve", "reject", "escalate"), verdict
report("structured_output", verdict=verdict)

# Errors surface as the SDK's typed exceptions.
bad = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-wrong", max_retries=0)
try:
    bad.chat.completions.create(model="support-v1", messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("a wrong key was accepted")
except openai.AuthenticationError as e:
    report("auth_error", status=e.status_code, code=e.code)
print("ok")

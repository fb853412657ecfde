// Test-only OpenAI-compatible server over a small real model, for llmkit's integration tests.
//
// Usage: node server.mjs --model PATH.gguf [--port 0] [--port-file FILE]
// Serves GET /health, GET /v1/models and POST /v1/chat/completions (non-streaming and SSE
// streaming with usage; response_format json_schema through llama.cpp's JSON-schema grammar).
// The model (Gemma 3 270M, a *base* model) has no chat template, so messages are formatted as
// plain "Role: text" lines. Tests assert mechanics (shape, streaming, usage, schema-valid JSON),
// never answer quality. Requests are served one at a time (one context sequence).
import http from "node:http";
import fs from "node:fs";
import { getLlama, LlamaCompletion } from "node-llama-cpp";

function arg(name, fallback) {
    const i = process.argv.indexOf(name);
    return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const modelPath = arg("--model");
if (!modelPath || !fs.existsSync(modelPath)) {
    console.error(`model file not found: ${modelPath}; pass --model PATH.gguf`);
    process.exit(2);
}
const port = Number(arg("--port", "0"));
const portFile = arg("--port-file");
const modelName = arg("--model-name", "gemma-3-270m-q4_k_m");

// Prebuilt CPU binding only: never compile llama.cpp, never download anything.
const llama = await getLlama({ build: "never", gpu: false, logLevel: "error" });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: 2048, threads: 2 });
const completion = new LlamaCompletion({ contextSequence: context.getSequence() });

let queue = Promise.resolve();
function serialized(fn) {
    const run = queue.then(fn, fn);
    queue = run.catch(() => {});
    return run;
}

function formatPrompt(messages) {
    const lines = [];
    for (const m of messages ?? []) {
        const text = typeof m.content === "string"
            ? m.content
            : (m.content ?? []).filter((p) => p.type === "text").map((p) => p.text).join("");
        const role = { system: "System", user: "User", assistant: "Assistant", tool: "Tool", developer: "System" }[m.role] ?? "User";
        lines.push(`${role}: ${text}`);
    }
    lines.push("Assistant:");
    return lines.join("\n");
}

function send(res, status, body) {
    const data = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "x-request-id": `shim-${Date.now()}` });
    res.end(data);
}

function errorBody(message, type = "invalid_request_error") {
    return { error: { message, type, code: null, param: null } };
}

async function chat(req, res, body) {
    const prompt = formatPrompt(body.messages);
    const maxTokens = Math.min(body.max_completion_tokens ?? body.max_tokens ?? 64, 256);
    let grammar;
    if (body.response_format?.type === "json_schema") {
        grammar = await llama.createGrammarForJsonSchema(body.response_format.json_schema.schema);
    } else if (body.response_format?.type === "json_object") {
        grammar = await llama.getGrammarFor("json");
    }
    const id = `chatcmpl-shim-${Date.now()}`;
    const created = Math.floor(Date.now() / 1000);
    const promptTokens = model.tokenize(prompt).length;
    const stream = body.stream === true;
    if (stream) {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "x-request-id": id });
        const chunk = (delta, finish) => ({ id, object: "chat.completion.chunk", created, model: modelName,
            choices: [{ index: 0, delta, finish_reason: finish ?? null }] });
        res.write(`data: ${JSON.stringify(chunk({ role: "assistant", content: "" }))}\n\n`);
    }
    const result = await completion.generateCompletionWithMeta(prompt, {
        maxTokens,
        temperature: body.temperature ?? 0,
        seed: body.seed ?? 1,
        grammar,
        customStopTriggers: grammar ? undefined : ["\nUser:", "\nSystem:"],
        onTextChunk: stream ? (text) => {
            res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: modelName,
                choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`);
        } : undefined,
    });
    const finish = result.metadata.stopReason === "maxTokens" ? "length" : "stop";
    const completionTokens = model.tokenize(result.response).length;
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
        prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } };
    if (stream) {
        res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: modelName,
            choices: [{ index: 0, delta: {}, finish_reason: finish }] })}\n\n`);
        if (body.stream_options?.include_usage) {
            res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: modelName, choices: [], usage })}\n\n`);
        }
        res.write("data: [DONE]\n\n");
        res.end();
        return;
    }
    send(res, 200, { id, object: "chat.completion", created, model: modelName,
        choices: [{ index: 0, message: { role: "assistant", content: result.response, refusal: null }, finish_reason: finish, logprobs: null }],
        usage });
}

const server = http.createServer((req, res) => {
    req.socket.setNoDelay(true);
    if (req.method === "GET" && req.url === "/health") return send(res, 200, { status: "ok", model: modelName });
    if (req.method === "GET" && req.url === "/v1/models") {
        return send(res, 200, { object: "list", data: [{ id: modelName, object: "model", owned_by: "local" }] });
    }
    if (req.method !== "POST" || !req.url.startsWith("/v1/chat/completions")) {
        return send(res, 404, errorBody(`no route for ${req.method} ${req.url}`, "not_found_error"));
    }
    let raw = "";
    req.on("data", (c) => { raw += c; });
    req.on("end", () => {
        let body;
        try { body = JSON.parse(raw); } catch (e) { return send(res, 400, errorBody(`body is not json: ${e.message}`)); }
        if (!Array.isArray(body.messages) || body.messages.length === 0) return send(res, 400, errorBody("messages must be a non-empty array"));
        serialized(() => chat(req, res, body)).catch((e) => {
            if (!res.headersSent) send(res, 500, errorBody(String(e?.message ?? e), "server_error"));
            else res.end();
        });
    });
});

server.listen(port, "127.0.0.1", () => {
    const actual = server.address().port;
    if (portFile) fs.writeFileSync(portFile, String(actual));
    console.log(`llama-openai shim listening on http://127.0.0.1:${actual} with ${modelPath}`);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => { server.close(); process.exit(0); });

// The Ollama API (/api/...), for clients written against Ollama (the official `ollama` npm and
// Python clients, Open WebUI, editors' plugins). Each generating route is an adapter over the
// OpenAI handlers: the Ollama body is translated into the OpenAI request (same validation, same
// engine path, same limits and keys), and the answer back into Ollama's shape: NDJSON streams
// (`application/x-ndjson`) ending in a `done` object with the token counts and durations (ns).
#pragma once

#include <string>

#include "hearth/server/serving.h"

namespace hearth::server {

// POST /api/chat and /api/generate (streamed unless "stream": false, as Ollama).
HttpResponse handle_ollama_chat(Serving& sv, const HttpRequest& req, int key);
HttpResponse handle_ollama_generate(Serving& sv, const HttpRequest& req, int key);
// POST /api/embed ({"input": text or [texts]} -> "embeddings", L2-normalised as Ollama's) and the
// older /api/embeddings ({"prompt": text} -> "embedding").
HttpResponse handle_ollama_embed(Serving& sv, const HttpRequest& req, int key, bool legacy);
// GET /api/tags, GET /api/ps, POST /api/show: the served model, as Ollama lists models.
HttpResponse handle_ollama_tags(const Serving& sv, bool running);
HttpResponse handle_ollama_show(const Serving& sv, const HttpRequest& req);
// GET /api/version.
HttpResponse handle_ollama_version();

// Whether an Ollama model name names the served model: exactly, or with the ":latest" tag that
// Ollama clients add to untagged names.
bool ollama_name_matches(const std::string& requested, const std::string& served);

}  // namespace hearth::server

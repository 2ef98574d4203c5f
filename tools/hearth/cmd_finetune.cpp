// `hearth finetune`: LoRA on a model you already have. The base (a file or a verified store
// reference, quantized or not) is frozen and dequantized; the data is plain text or chat
// examples (only the assistant's tokens are trained); the adapter is written in the GGUF LoRA
// layout the ecosystem reads, and --merged-out also writes base + adapter as a new model.
// Beside the adapter goes its provenance statement (ADAPTER.provenance.json: the adapter's
// digest, the base model's and the training data's digests, the training parameters); with
// --sign-key it is signed (ADAPTER.provenance.sigstore.json), and with --import NAME:TAG the
// adapter goes into the store, signed, with the signed statement attached as an attestation.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "common_options.h"
#include "hearth/core/atomic_file.h"
#include "hearth/core/process_stats.h"
#include "hearth/engine/chat_template.h"
#include "hearth/quantize/provenance.h"
#include "hearth/store/model_import.h"
#include "hearth/store/store.h"
#include "hearth/tokenizer/tokenizer.h"
#include "hearth/tokenizer/vocab_gguf.h"
#include "hearth/train/corpus.h"
#include "hearth/train/gguf_export.h"
#include "hearth/train/lora.h"
#include "hearth/trust/model_signer.h"
#include "hearth/trust/signing_key.h"
#include "hearth/trust/sigstore_bundle.h"
#include "model_arg.h"
#include "signed_import.h"

namespace hearth::cli {
namespace {

struct FinetuneOptions {
  bool allow_unsigned = false;
  std::string base;
  std::string data;
  std::string out;
  std::string merged_out;
  int64_t rank = 8;
  float alpha = 16.0f;
  std::string targets = "q,k,v,o,gate,up,down";
  int64_t steps = 200;
  int64_t epochs = 0;
  float lr = 1e-3f;
  double eval_frac = 0.05;
  int64_t ctx = 128;
  int64_t batch = 8;
  uint64_t seed = 1;
  int threads = 0;
  bool no_provenance = false;
  std::string sign_key;         // private key PEM: sign the provenance statement (and the import)
  std::string import_ref;       // name:tag: import the adapter into the store
  uint64_t import_version = 1;  // its org.hearth.version (what the signature claims)
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Chat examples ({"messages": [{"role", "content"}, ...]} per line), rendered with the base's
// chat template (plain when it has none hearth knows): one sequence per assistant turn, its
// prompt masked out so that only the assistant's tokens (and the EOS after them) are trained.
struct ChatData {
  std::vector<int32_t> train, eval;
  std::vector<uint8_t> train_mask, eval_mask;
};

Result<ChatData> read_chat_examples(const std::string& path, const gguf::GgufFile& base,
                                    const tokenizer::Tokenizer& tok, double eval_frac) {
  HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(path, uint64_t{1} << 30));
  // The base's own template (Jinja), as the server renders its chats; a built-in family when it
  // has none or it does not parse.
  std::string warning;
  HEARTH_ASSIGN_OR_RETURN(engine::ChatFormat format, engine::ChatFormat::for_gguf(base, "", &warning));
  if (!warning.empty()) std::fprintf(stderr, "warning: %s\n", warning.c_str());
  const int64_t k = eval_frac > 0.0 ? std::max<int64_t>(2, std::llround(1.0 / eval_frac)) : 0;
  ChatData d;
  std::stringstream lines(text);
  int64_t line_no = 0, examples = 0;
  for (std::string line; std::getline(lines, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto where = [&] { return fmt::format("{}:{}", path, line_no); };
    std::vector<engine::ChatMessage> messages;
    try {
      const auto j = nlohmann::json::parse(line);
      for (const auto& m : j.at("messages")) {
        messages.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
      }
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: not a chat example ({{\"messages\": [{{\"role\": ..., \"content\": ...}}]}}): {}", where(),
                        e.what());
    }
    const bool held_out = k > 0 && examples % k == k / 2;
    ++examples;
    auto& ids = held_out ? d.eval : d.train;
    auto& mask = held_out ? d.eval_mask : d.train_mask;
    for (size_t i = 0; i < messages.size(); ++i) {
      if (messages[i].role != "assistant" || i == 0) continue;
      const std::vector<engine::ChatMessage> before(messages.begin(), messages.begin() + static_cast<ptrdiff_t>(i));
      HEARTH_ASSIGN_OR_RETURN(engine::RenderedChat r,
                              format.render(before, tok.token_text(tok.bos()), tok.token_text(tok.eos())));
      const auto prompt = tok.encode(r.prompt, /*add_special=*/r.add_bos, /*parse_special=*/true);
      auto answer = tok.encode(messages[i].content, /*add_special=*/false, /*parse_special=*/false);
      if (tok.eos() >= 0) answer.push_back(tok.eos());
      ids.insert(ids.end(), prompt.begin(), prompt.end());
      mask.insert(mask.end(), prompt.size(), 0);
      ids.insert(ids.end(), answer.begin(), answer.end());
      mask.insert(mask.end(), answer.size(), 1);
    }
  }
  if (d.train.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: no chat example with an assistant reply after a prompt", path);
  }
  return d;
}

// The provenance statement of the adapter at o.out: the base as `base_name` with its digest
// (a store base's verified weights digest, else the file's), the data file's digest, and the
// training parameters.
Status write_adapter_provenance(const FinetuneOptions& o, const ResolvedModelArg& base, int64_t steps,
                                int64_t started) {
  quantize::BuildProvenance p;
  p.build_type = quantize::kFinetuneBuildType;
  p.parameters = {{"method", std::string("lora")},
                  {"rank", o.rank},
                  {"alpha", std::stod(fmt::format("{}", o.alpha))},
                  {"targets", split_commas(o.targets)},
                  {"steps", steps},
                  {"lr", std::stod(fmt::format("{}", o.lr))},
                  {"batch", o.batch},
                  {"ctx", o.ctx},
                  {"eval_frac", o.eval_frac},
                  {"seed", static_cast<int64_t>(o.seed)}};
  quantize::BuildDependency b{{base.path, ""}, "base-model"};
  if (base.verified) {
    b.file.name = base.reference + "@" + base.manifest_digest;
    b.file.sha256 = base.weights_digest.substr(7);  // after "sha256:": the bytes that were verified
  }
  p.dependencies.push_back(std::move(b));
  p.dependencies.push_back({{o.data, ""}, "training-data"});
  p.hearth_version = HEARTH_VERSION;
  p.started_unix = started;
  p.finished_unix = static_cast<int64_t>(std::time(nullptr));
  const std::string path = quantize::provenance_path_for(o.out);
  HEARTH_TRY(quantize::write_build_provenance(path, o.out, std::move(p)));
  std::printf("provenance: %s\n", path.c_str());
  return ok_status();
}

Status run(const FinetuneOptions& o) {
  if (o.out.empty()) return make_error(ErrorCode::kInvalidArgument, "finetune: give the adapter file with --out");
  // The key and the reference are checked before the work, so a typo fails fast.
  HEARTH_ASSIGN_OR_RETURN(const std::optional<trust::PrivateKey> key,
                          load_signing_flags(o.sign_key, o.no_provenance, o.import_ref));
  const int64_t started = static_cast<int64_t>(std::time(nullptr));
  HEARTH_ASSIGN_OR_RETURN(ResolvedModelArg arg, resolve_model_arg(o.base, "finetune", o.allow_unsigned));
  HEARTH_ASSIGN_OR_RETURN(auto mapped, open_gguf(arg));
  HEARTH_ASSIGN_OR_RETURN(train::BaseModel base, train::read_base_model(mapped->file, o.ctx));
  HEARTH_ASSIGN_OR_RETURN(tokenizer::VocabSpec vocab, tokenizer::vocab_spec_from_gguf(mapped->file));
  HEARTH_ASSIGN_OR_RETURN(auto tok, tokenizer::Tokenizer::create(vocab));

  std::vector<int32_t> train_ids, eval_ids;
  std::vector<uint8_t> train_mask, eval_mask;
  if (o.data.ends_with(".jsonl")) {
    HEARTH_ASSIGN_OR_RETURN(ChatData chat, read_chat_examples(o.data, mapped->file, *tok, o.eval_frac));
    train_ids = std::move(chat.train), eval_ids = std::move(chat.eval);
    train_mask = std::move(chat.train_mask), eval_mask = std::move(chat.eval_mask);
  } else {
    HEARTH_ASSIGN_OR_RETURN(train::Corpus corpus, train::read_corpus({o.data}, o.eval_frac));
    train_ids = train::tokenize_documents(*tok, corpus.train);
    eval_ids = train::tokenize_documents(*tok, corpus.eval);
  }

  train::LoraOptions lo;
  lo.rank = o.rank;
  lo.alpha = o.alpha;
  lo.targets = split_commas(o.targets);
  lo.batch = o.batch;
  lo.seq_len = std::min(o.ctx, base.shape.n_ctx);
  lo.seed = o.seed;
  lo.adamw.lr = o.lr;
  int64_t steps = o.steps;
  if (o.epochs > 0) {
    const int64_t per_step = lo.batch * lo.seq_len;
    steps = std::max<int64_t>(1, o.epochs * static_cast<int64_t>(train_ids.size()) / per_step);
  }
  lo.adamw.total_steps = steps;
  lo.adamw.warmup_steps = std::clamp<int64_t>(steps / 10, 1, 50);
  if (o.eval_frac > 0 && static_cast<int64_t>(eval_ids.size()) < lo.seq_len + 1)
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: the held-out part is {} tokens, less than one evaluation window of {}; raise --eval-frac, "
                      "lower --ctx, or pass --eval-frac 0 to train without a held-out loss",
                      o.data, eval_ids.size(), lo.seq_len + 1);
  const int threads = o.threads > 0 ? o.threads : physical_core_count();
  const train::LlamaShape shape = base.shape;
  HEARTH_ASSIGN_OR_RETURN(auto t, train::LoraTrainer::create(std::move(base), lo, train_ids, eval_ids, threads,
                                                             std::move(train_mask), std::move(eval_mask)));
  std::fprintf(
      stderr,
      "base: %s (n_embd %lld, %lld layers); LoRA rank %lld, alpha %g on %s; %zu training tokens, %zu held out\n",
      arg.display.c_str(), static_cast<long long>(shape.n_embd), static_cast<long long>(shape.n_layer),
      static_cast<long long>(lo.rank), lo.alpha, o.targets.c_str(), train_ids.size(), eval_ids.size());

  // Without a held-out part (--eval-frac 0) there is no eval loss to show.
  const auto shown = [](double loss) { return std::isfinite(loss) ? fmt::format("{:.4f}", loss) : std::string("-"); };
  const double eval_before = t->eval_loss();
  std::fprintf(stderr, "eval loss before: %s\n", shown(eval_before).c_str());
  const double t0 = now_seconds();
  const int64_t log_every = std::max<int64_t>(1, steps / 20);
  double train_loss = NAN, eval_loss = eval_before;
  double train_seconds = 0;  // in train_step only: the training throughput, evaluations aside
  for (int64_t s = 1; s <= steps; ++s) {
    const double ts = now_seconds();
    train_loss = t->train_step();
    train_seconds += now_seconds() - ts;
    if (s % std::max<int64_t>(1, steps / 5) == 0 || s == steps) eval_loss = t->eval_loss();
    if (s % log_every == 0 || s == steps || s == 1) {
      const double el = now_seconds() - t0;
      std::fprintf(stderr, "step %6lld/%lld | train loss %.4f | eval loss %s | %.3g train tok/s | ETA %.0fs\n",
                   static_cast<long long>(s), static_cast<long long>(steps), train_loss, shown(eval_loss).c_str(),
                   static_cast<double>(s * t->tokens_per_step()) / train_seconds,
                   el / static_cast<double>(s) * (steps - s));
    }
  }
  HEARTH_TRY(t->write_adapter(o.out, std::string(mapped->file.get_string("general.name").value_or("model"))));
  if (std::isfinite(eval_before) && std::isfinite(eval_loss)) {
    std::printf("wrote %s; held-out loss %.4f -> %.4f (perplexity %.2f -> %.2f)\n", o.out.c_str(), eval_before,
                eval_loss, std::exp(eval_before), std::exp(eval_loss));
  } else {
    std::printf("wrote %s (no held-out part: --eval-frac 0)\n", o.out.c_str());
  }
  if (!o.merged_out.empty()) {
    HEARTH_TRY(train::export_gguf(o.merged_out, t->params(), t->merged().data(), vocab, TensorType::F32, "merged"));
    std::printf("wrote the merged model %s\n", o.merged_out.c_str());
  }
  if (!o.no_provenance) HEARTH_TRY(write_adapter_provenance(o, arg, steps, started));
  HEARTH_TRY(sign_and_import_output(o.out, key, o.import_ref, o.import_version));
  return ok_status();
}

void setup(CLI::App& app) {
  auto o = std::make_shared<FinetuneOptions>();
  auto* sub = app.add_subcommand("finetune", "train a LoRA adapter for a llama model on your text");
  sub->add_option("base", o->base, "base GGUF file or store reference (default: $HEARTH_MODEL)");
  sub->add_option("--data", o->data, "plain text (.txt) or chat examples (.jsonl, {\"messages\": [...]} per line)")
      ->required();
  sub->add_option("-o,--out", o->out, "adapter GGUF file")->required();
  sub->add_option("--merged-out", o->merged_out, "also write base + adapter as a model (f32)");
  sub->add_option("--rank", o->rank, "LoRA rank")->capture_default_str();
  sub->add_option("--alpha", o->alpha, "LoRA alpha (scale = alpha / rank)")->capture_default_str();
  sub->add_option("--targets", o->targets, "adapted matrices")->capture_default_str();
  sub->add_option("--steps", o->steps, "optimizer steps")->capture_default_str();
  sub->add_option("--epochs", o->epochs, "passes over the data instead of --steps");
  sub->add_option("--lr", o->lr, "peak learning rate")->capture_default_str();
  sub->add_option("--eval-frac", o->eval_frac, "share of paragraphs held out")->capture_default_str();
  add_ctx_option(sub, o->ctx, "training window in tokens")->capture_default_str();
  sub->add_option("-b,--batch", o->batch, "windows per step")->capture_default_str();
  sub->add_option("--seed", o->seed, "random seed")->capture_default_str();
  add_threads_option(sub, o->threads);
  sub->add_flag("--allow-unsigned", o->allow_unsigned, "accept an unsigned store model");
  sub->add_flag("--no-provenance", o->no_provenance, "do not write ADAPTER.provenance.json");
  sub->add_option("--sign-key", o->sign_key,
                  "private key PEM (hearth keygen): sign the provenance into ADAPTER.provenance.sigstore.json");
  sub->add_option("--import", o->import_ref,
                  "import the adapter into the store as name:tag (with --sign-key: signed, provenance attached)");
  sub->add_option("--import-version", o->import_version, "version recorded (and signed) for --import")
      ->capture_default_str();
  sub->callback([o] {
    Status s = run(*o);
    set_exit_code(s.ok() ? 0 : report_error(s));
  });
}

CommandRegistrar reg(76, setup);

}  // namespace
}  // namespace hearth::cli

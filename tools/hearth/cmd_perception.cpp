// The tasks users run on ONNX models, on hearth's own executor (the perception library):
//   hearth ocr IMAGE [--json]            PP-OCR: detection, direction, recognition
//   hearth vad AUDIO [--json]            Silero VAD: speech segments with times
//   hearth detect faces IMAGE [--json]   BlazeFace: boxes, landmarks, scores
// Model files come from flags, else from environment variables (HEARTH_OCR_MODELS: a directory
// with PaddleOCR's file names; HEARTH_VAD_MODEL, HEARTH_FACE_MODEL: files).
// This file parses flags and prints; nlohmann-json is seen only here.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "model_arg.h"
#include "hearth/perception/audio.h"
#include "hearth/perception/faces.h"
#include "hearth/perception/image.h"
#include "hearth/perception/ocr.h"
#include "hearth/perception/vad.h"

namespace hearth::cli {
namespace {

using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;
namespace pc = hearth::perception;

std::string env_or(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

void report(const Status& s) { set_exit_code(s.ok() ? 0 : report_error(s)); }

struct OcrCmd {
  std::string image, models, det, rec, cls, keys;
  bool json = false, no_cls = false, allow_unsigned = false;
  int threads = 0;
  float box_threshold = 0.6f;
};

Status run_ocr(const OcrCmd& o) {
  const std::string dir = o.models.empty() ? env_or("HEARTH_OCR_MODELS") : o.models;
  auto pick = [&](const std::string& flag, const char* file) -> std::string {
    if (!flag.empty()) return flag;
    return dir.empty() ? std::string() : (fs::path(dir) / file).string();
  };
  const std::string det = pick(o.det, "ch_PP-OCRv4_det_infer.onnx"), rec = pick(o.rec, "ch_PP-OCRv4_rec_infer.onnx");
  const std::string cls = o.no_cls ? "" : pick(o.cls, "ch_ppocr_mobile_v2.0_cls_infer.onnx"), keys = pick(o.keys, "ppocr_keys_v1.txt");
  if (det.empty() || rec.empty() || keys.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "no OCR models: give --models DIR (or set HEARTH_OCR_MODELS), or --det, --rec and --keys");
  }
  HEARTH_ASSIGN_OR_RETURN(pc::Image img, pc::load_image(o.image));
  onnx::SessionOptions so;
  so.n_threads = o.threads;
  pc::OcrPipeline::Sessions sessions;
  auto open_one = [&](const std::string& arg, std::unique_ptr<onnx::Session>& out, std::string& name) -> Status {
    HEARTH_ASSIGN_OR_RETURN(onnx::Session s, open_onnx_model(arg, "ocr", o.allow_unsigned, so));
    out = std::make_unique<onnx::Session>(std::move(s));
    name = arg;
    return ok_status();
  };
  HEARTH_TRY(open_one(det, sessions.det, sessions.det_name));
  HEARTH_TRY(open_one(rec, sessions.rec, sessions.rec_name));
  if (!cls.empty()) HEARTH_TRY(open_one(cls, sessions.cls, sessions.cls_name));
  HEARTH_ASSIGN_OR_RETURN(pc::OcrPipeline p, pc::OcrPipeline::from_sessions(std::move(sessions), keys));
  pc::OcrOptions opt;
  opt.box_threshold = o.box_threshold;
  HEARTH_ASSIGN_OR_RETURN(auto lines, p.read(img, opt));
  if (o.json) {
    Json j;
    j["image"] = o.image;
    j["width"] = img.width;
    j["height"] = img.height;
    j["lines"] = Json::array();
    for (const auto& l : lines) {
      j["lines"].push_back({{"text", l.text},
                            {"confidence", l.confidence},
                            {"box", {l.x, l.y, l.width, l.height}},
                            {"box_score", l.box_score},
                            {"rotated180", l.rotated180}});
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    for (const auto& l : lines) std::printf("%s\n", l.text.c_str());
  }
  return ok_status();
}

struct VadCmd {
  std::string audio, model;
  bool json = false, probs = false, allow_unsigned = false;
  int threads = 1;
  pc::VadOptions opt;
};

Status run_vad(const VadCmd& o) {
  const std::string model = o.model.empty() ? env_or("HEARTH_VAD_MODEL") : o.model;
  if (model.empty()) return make_error(ErrorCode::kInvalidArgument, "no VAD model: give --model FILE.onnx (or set HEARTH_VAD_MODEL)");
  HEARTH_ASSIGN_OR_RETURN(pc::Audio raw, pc::load_audio(o.audio));
  HEARTH_ASSIGN_OR_RETURN(pc::Audio a, pc::resample(raw, pc::SileroVad::kSampleRate));
  onnx::SessionOptions so;
  so.n_threads = o.threads;
  HEARTH_ASSIGN_OR_RETURN(onnx::Session session, open_onnx_model(model, "vad", o.allow_unsigned, so));
  HEARTH_ASSIGN_OR_RETURN(pc::SileroVad vad, pc::SileroVad::from_session(std::move(session)));
  HEARTH_ASSIGN_OR_RETURN(auto probs, pc::vad_probabilities(vad, a.samples));
  const auto segs = pc::speech_segments(probs, static_cast<int64_t>(a.samples.size()), o.opt);
  if (o.json) {
    Json j;
    j["audio"] = o.audio;
    j["sample_rate"] = raw.sample_rate;
    j["seconds"] = raw.seconds();
    j["model"] = vad.kind();
    j["segments"] = Json::array();
    for (const auto& s : segs) j["segments"].push_back({{"start", s.start}, {"end", s.end}});
    if (o.probs) j["probabilities"] = probs;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    for (const auto& s : segs) std::printf("%.3f\t%.3f\n", s.start, s.end);
  }
  return ok_status();
}

struct FacesCmd {
  std::string image, model;
  bool json = false, allow_unsigned = false;
  int threads = 0;
  pc::FaceOptions opt;
};

Status run_faces(const FacesCmd& o) {
  const std::string model = o.model.empty() ? env_or("HEARTH_FACE_MODEL") : o.model;
  if (model.empty()) return make_error(ErrorCode::kInvalidArgument, "no face model: give --model FILE.onnx (or set HEARTH_FACE_MODEL)");
  HEARTH_ASSIGN_OR_RETURN(pc::Image img, pc::load_image(o.image));
  onnx::SessionOptions so;
  so.n_threads = o.threads;
  HEARTH_ASSIGN_OR_RETURN(onnx::Session session, open_onnx_model(model, "detect", o.allow_unsigned, so));
  HEARTH_ASSIGN_OR_RETURN(pc::FaceDetector d, pc::FaceDetector::from_session(std::move(session), model));
  HEARTH_ASSIGN_OR_RETURN(auto faces, d.detect(img, o.opt));
  if (o.json) {
    Json j;
    j["image"] = o.image;
    j["width"] = img.width;
    j["height"] = img.height;
    j["faces"] = Json::array();
    for (const auto& f : faces) {
      Json lm = Json::array();
      for (const auto& p : f.landmarks) lm.push_back({p[0], p[1]});
      j["faces"].push_back({{"score", f.score}, {"box", {f.x, f.y, f.width, f.height}}, {"landmarks", lm}});
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    for (const auto& f : faces) std::printf("face %.3f at %.0f,%.0f %.0fx%.0f\n", f.score, f.x, f.y, f.width, f.height);
    if (faces.empty()) std::printf("no faces\n");
  }
  return ok_status();
}

void setup(CLI::App& app) {
  {
    auto o = std::make_shared<OcrCmd>();
    auto* c = app.add_subcommand("ocr", "read the text of a document image (PP-OCR models on hearth's ONNX engine)");
    c->add_option("image", o->image, "PNG or JPEG image")->required();
    c->add_option("--models", o->models, "directory with PaddleOCR's det, rec, cls models and ppocr_keys_v1.txt (default: $HEARTH_OCR_MODELS)");
    c->add_option("--det", o->det, "detection model: a file or a store reference (overrides --models)");
    c->add_option("--rec", o->rec, "recognition model: a file or a store reference (overrides --models)");
    c->add_option("--cls", o->cls, "direction classifier model: a file or a store reference (overrides --models)");
    c->add_option("--keys", o->keys, "character list, one per line (overrides --models)");
    c->add_flag("--no-cls", o->no_cls, "skip the direction classifier");
    c->add_option("--box-threshold", o->box_threshold, "minimum mean text probability of a region")->check(CLI::Range(0.0, 1.0));
    c->add_option("-t,--threads", o->threads, "threads (default: every core)")->check(CLI::Range(0, 1024));
    c->add_flag("--json", o->json, "print lines with boxes and confidences as JSON");
    c->add_flag("--allow-unsigned", o->allow_unsigned, "accept unsigned store models (never excuses tampering)");
    c->callback([o] { report(run_ocr(*o)); });
  }
  {
    auto o = std::make_shared<VadCmd>();
    auto* c = app.add_subcommand("vad", "find the speech in an audio file (Silero VAD on hearth's ONNX engine)");
    c->add_option("audio", o->audio, "audio file (WAV, FLAC, ...; resampled to 16 kHz)")->required();
    c->add_option("--model", o->model, "Silero VAD model (v4, v5 or v6 export): a file or a store reference (default: $HEARTH_VAD_MODEL)");
    c->add_option("--threshold", o->opt.threshold, "speech starts at this probability")->check(CLI::Range(0.0, 1.0));
    c->add_option("--min-speech-ms", o->opt.min_speech_ms, "drop shorter segments")->check(CLI::Range(0, 3600000));
    c->add_option("--min-silence-ms", o->opt.min_silence_ms, "end a segment only after this much silence")->check(CLI::Range(0, 3600000));
    c->add_option("--speech-pad-ms", o->opt.speech_pad_ms, "pad segments on both sides")->check(CLI::Range(0, 60000));
    c->add_option("-t,--threads", o->threads, "threads")->check(CLI::Range(1, 1024));
    c->add_flag("--json", o->json, "print segments as JSON");
    c->add_flag("--allow-unsigned", o->allow_unsigned, "accept unsigned store models (never excuses tampering)");
    c->add_flag("--probabilities", o->probs, "with --json: add the probability of every 32 ms window");
    c->callback([o] { report(run_vad(*o)); });
  }
  {
    auto* detect = app.add_subcommand("detect", "detect objects in an image on hearth's ONNX engine");
    detect->require_subcommand(1);
    auto o = std::make_shared<FacesCmd>();
    auto* c = detect->add_subcommand("faces", "detect faces (BlazeFace 128 or 256)");
    c->add_option("image", o->image, "PNG or JPEG image")->required();
    c->add_option("--model", o->model, "BlazeFace model: a file or a store reference (default: $HEARTH_FACE_MODEL)");
    c->add_option("--threshold", o->opt.score_threshold, "minimum score")->check(CLI::Range(0.0, 1.0));
    c->add_option("--iou", o->opt.iou_threshold, "overlap merged into one face")->check(CLI::Range(0.0, 1.0));
    c->add_option("-t,--threads", o->threads, "threads (default: every core)")->check(CLI::Range(0, 1024));
    c->add_flag("--json", o->json, "print faces as JSON");
    c->add_flag("--allow-unsigned", o->allow_unsigned, "accept unsigned store models (never excuses tampering)");
    c->callback([o] { report(run_faces(*o)); });
  }
}

CommandRegistrar reg(101, setup);

}  // namespace
}  // namespace hearth::cli

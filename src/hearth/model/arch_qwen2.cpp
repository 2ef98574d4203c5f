// `qwen2`: Qwen2 / Qwen2.5. Like llama, with q/k/v biases and NeoX-style RoPE.
#include "hearth/model/architecture.h"

namespace hearth::model {

Status load_qwen2(const gguf::GgufFile& f, HParams& hp, ModelWeights& w, WeightBinder& b) {
  HEARTH_TRY(read_common_hparams(f, hp));
  auto eps = f.get_f32("qwen2.attention.layer_norm_rms_epsilon");
  if (!eps.ok()) return eps.status().with_context(f.name());
  hp.norm_eps = *eps;
  hp.norm = NormType::kRms;
  hp.rope_mode = kernels::RopeMode::kNeox;
  HEARTH_TRY(bind_io_weights(hp, w, b, /*norm_bias=*/false));
  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int il = 0; il < hp.n_layer; ++il) {
    HEARTH_TRY(bind_attention(hp, w.layers[il], b, il, /*qkv_bias=*/2, /*norm_bias=*/false));
    HEARTH_TRY(bind_ffn(hp, w.layers[il], b, il, /*norm_bias=*/false, /*norm_optional=*/false));
  }
  return ok_status();
}

}  // namespace hearth::model

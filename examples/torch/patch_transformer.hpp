// A small vision transformer for 28x28 Fashion-MNIST images, in libtorch:
// the image is cut into a 4x4 grid of 7x7 patches (16 tokens), each patch
// embedded by one Linear(49, d) plus a learned position embedding, then
// `layers` post-norm encoder layers (multi-head self-attention + a ReLU MLP
// of width 2d, no dropout), a final LayerNorm, mean pooling over the tokens
// and a linear head. d = 96, 3 layers, 4 heads, 5 classes: 231,365
// parameters. export_torchscript.py defines the same network in Python.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace vit {

struct Config {
  std::int64_t d_model = 96;
  std::int64_t heads = 4;
  std::int64_t layers = 3;
  std::int64_t classes = 5;
};

/// (N, 784) pixels in [0, 1] -> (N, 16, 49) patches, row-major over the
/// 4x4 grid, pixels row-major inside a patch.
inline torch::Tensor patches(const torch::Tensor& images) {
  return images.reshape({-1, 4, 7, 4, 7}).permute({0, 1, 3, 2, 4}).reshape({-1, 16, 49});
}

class PatchTransformerImpl : public torch::nn::Module {
 public:
  explicit PatchTransformerImpl(const Config& c = {})
      : embed(register_module("embed", torch::nn::Linear(49, c.d_model))),
        position(register_parameter("position", 0.02 * torch::randn({16, c.d_model}))),
        encoder(register_module("encoder",
                                torch::nn::TransformerEncoder(torch::nn::TransformerEncoderOptions(
                                    torch::nn::TransformerEncoderLayerOptions(c.d_model, c.heads)
                                        .dim_feedforward(2 * c.d_model)
                                        .dropout(0.0),
                                    c.layers)))),
        norm(register_module("norm",
                             torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.d_model})))),
        head(register_module("head", torch::nn::Linear(c.d_model, c.classes))) {}

  /// Logits (N, classes) of images (N, 784).
  torch::Tensor forward(const torch::Tensor& images) {
    torch::Tensor x = embed(patches(images)) + position;  // (N, 16, d)
    x = encoder(x.transpose(0, 1)).transpose(0, 1);       // the encoder takes (S, N, d)
    return head(norm(x).mean(1));
  }

  torch::nn::Linear embed;
  torch::Tensor position;
  torch::nn::TransformerEncoder encoder;
  torch::nn::LayerNorm norm;
  torch::nn::Linear head;
};
TORCH_MODULE(PatchTransformer);

}  // namespace vit

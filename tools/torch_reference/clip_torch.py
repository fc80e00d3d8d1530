"""Plain PyTorch implementation of the models and losses of shared/spec/MODELS.md.

The reference that mmgrad is checked against (tests/models/test_torch_parity.cpp) and
benchmarked against (bench/torch_clip_step.py). Written from the spec with ordinary
torch.nn modules; state_dict() names are exactly mmgrad's named_parameters() names, so a
checkpoint moves between the two by name. Runs on Debian's python3-torch (1.13): no
torch.nn.functional.scaled_dot_product_attention, attention is written out.

Semantics that mmgrad fixes and this file follows (see models/*.cpp):
- Text pooling and the caption loss use the *first* end-of-text token of each row.
- ITM pairs are ordered positives (text i, image i) first, then (text i, image
  neg_image[i]), then, when given, (text neg_text[i], image i); labels 1 for the positives,
  0 for the rest; mean cross-entropy over all pairs.
- The caption decoder reads the text tower's last hidden state (after final_layer_norm);
  position t predicts token t+1; targets stop after the position that predicts the first
  EOT (later positions are ignored).
- The fusion and caption decoders' memory is the vision tower's last hidden state (before
  post_layernorm), through image_proj; the cross-attention memory is not layer-normed.
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass
class Config:
    """Mirrors mmgrad::nn::ModelConfig (models/config.h); defaults are clip-tiny."""
    name: str = "clip-tiny"
    image_size: int = 32
    patch_size: int = 4
    vision_width: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    context_length: int = 32
    vocab_size: int = 1024
    text_width: int = 128
    text_layers: int = 4
    text_heads: int = 4
    embed_dim: int = 128
    fusion_layers: int = 2
    caption_layers: int = 0
    tie_lm_head: bool = False
    activation: str = "gelu"
    contrastive: str = "clip"
    eot_token_id: int = 1023
    batch_size: int = 128

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


def preset(name: str) -> Config:
    if name == "clip-tiny":
        return Config()
    if name == "clip-b32":
        return Config(name="clip-b32", image_size=224, patch_size=32, vision_width=768, vision_layers=12,
                      vision_heads=12, context_length=77, vocab_size=49408, text_width=512, text_layers=12,
                      text_heads=8, embed_dim=512, fusion_layers=0, activation="quick_gelu",
                      eot_token_id=49407, batch_size=256)
    raise ValueError(f"unknown model preset '{name}' (known: clip-tiny, clip-b32)")


def activate(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "gelu":
        return F.gelu(x)  # exact (erf)
    if name == "quick_gelu":
        return x * torch.sigmoid(1.702 * x)
    raise ValueError(f"unknown activation '{name}'")


# ----------------------------------------------------------------------------- layers
class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        assert width % heads == 0
        self.heads = heads
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, memory: Optional[torch.Tensor] = None, causal: bool = False):
        kv = x if memory is None else memory
        B, T, W = x.shape
        S = kv.shape[1]
        H, D = self.heads, W // self.heads
        q = self.q_proj(x).view(B, T, H, D).transpose(1, 2)
        k = self.k_proj(kv).view(B, S, H, D).transpose(1, 2)
        v = self.v_proj(kv).view(B, S, H, D).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(D))
        if causal:
            assert T == S
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(mask, float("-inf"))
        o = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.out_proj(o.transpose(1, 2).reshape(B, T, W))


class Mlp(nn.Module):
    def __init__(self, width: int, activation: str):
        super().__init__()
        self.activation = activation
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x):
        return self.fc2(activate(self.activation, self.fc1(x)))


class EncoderLayer(nn.Module):
    """Pre-LN: x += attn(ln1(x)); x += mlp(ln2(x))."""

    def __init__(self, width: int, heads: int, activation: str):
        super().__init__()
        self.self_attn = Attention(width, heads)
        self.layer_norm1 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = Mlp(width, activation)
        self.layer_norm2 = nn.LayerNorm(width, eps=1e-5)

    def forward(self, x, causal: bool):
        x = x + self.self_attn(self.layer_norm1(x), causal=causal)
        return x + self.mlp(self.layer_norm2(x))


class CrossAttentionLayer(nn.Module):
    """x += self_attn(ln1(x)); x += cross_attn(ln_cross(x), memory); x += mlp(ln2(x))."""

    def __init__(self, width: int, heads: int, activation: str):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(width, eps=1e-5)
        self.self_attn = Attention(width, heads)
        self.layer_norm_cross = nn.LayerNorm(width, eps=1e-5)
        self.cross_attn = Attention(width, heads)
        self.layer_norm2 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = Mlp(width, activation)

    def forward(self, x, memory, causal: bool):
        x = x + self.self_attn(self.layer_norm1(x), causal=causal)
        x = x + self.cross_attn(self.layer_norm_cross(x), memory)
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, n: int, width: int, heads: int, activation: str, cross: bool = False):
        super().__init__()
        cls = CrossAttentionLayer if cross else EncoderLayer
        self.layers = nn.ModuleList([cls(width, heads, activation) for _ in range(n)])

    def forward(self, x, causal: bool, memory=None):
        for layer in self.layers:
            x = layer(x, causal) if memory is None else layer(x, memory, causal)
        return x


# ----------------------------------------------------------------------------- towers
class VisionEmbeddings(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.class_embedding = nn.Parameter(torch.randn(c.vision_width) * c.vision_width ** -0.5)
        self.patch_embedding = nn.Conv2d(3, c.vision_width, c.patch_size, stride=c.patch_size, bias=False)
        self.position_embedding = nn.Embedding(c.num_patches + 1, c.vision_width)


class VisionTransformer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.embeddings = VisionEmbeddings(c)
        self.pre_layrnorm = nn.LayerNorm(c.vision_width, eps=1e-5)  # (sic), Hugging Face's name
        self.encoder = Encoder(c.vision_layers, c.vision_width, c.vision_heads, c.activation)
        self.post_layernorm = nn.LayerNorm(c.vision_width, eps=1e-5)

    def forward(self, images):
        """images [B, 3, S, S] -> (last_hidden_state [B, N+1, W] before post_layernorm, pooled [B, W])."""
        e = self.embeddings
        patches = e.patch_embedding(images).flatten(2).transpose(1, 2)  # [B, N, W], row-major patches
        B, _, W = patches.shape
        x = torch.cat([e.class_embedding.view(1, 1, W).expand(B, 1, W), patches], dim=1)
        x = x + e.position_embedding.weight
        x = self.encoder(self.pre_layrnorm(x), causal=False)
        return x, self.post_layernorm(x[:, 0])


class TextEmbeddings(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.token_embedding = nn.Embedding(c.vocab_size, c.text_width)
        self.position_embedding = nn.Embedding(c.context_length, c.text_width)


def first_eot(ids: torch.Tensor, eot_token_id: int) -> torch.Tensor:
    """Index of the first end-of-text token of each row of ids [B, T]."""
    is_eot = ids == eot_token_id
    if not bool(is_eot.any(dim=1).all()):
        raise ValueError(f"a sequence has no end-of-text token (id {eot_token_id})")
    T = ids.shape[1]
    pos = torch.arange(T, device=ids.device).expand_as(ids)
    return torch.where(is_eot, pos, torch.full_like(pos, T)).min(dim=1).values


class TextTransformer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.eot_token_id = c.eot_token_id
        self.embeddings = TextEmbeddings(c)
        self.encoder = Encoder(c.text_layers, c.text_width, c.text_heads, c.activation)
        self.final_layer_norm = nn.LayerNorm(c.text_width, eps=1e-5)

    def forward(self, ids):
        """ids [B, T] -> (last_hidden_state [B, T, W] after final_layer_norm, pooled [B, W])."""
        T = ids.shape[1]
        e = self.embeddings
        x = e.token_embedding(ids) + e.position_embedding.weight[:T]
        x = self.final_layer_norm(self.encoder(x, causal=True))
        eot = first_eot(ids, self.eot_token_id)
        return x, x[torch.arange(ids.shape[0], device=ids.device), eot]


class FusionTransformer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.image_proj = nn.Linear(c.vision_width, c.text_width)
        self.encoder = Encoder(c.fusion_layers, c.text_width, c.text_heads, c.activation, cross=True)
        self.itm_head = nn.Linear(c.text_width, 2)

    def forward(self, text, image):
        # Unmasked self-attention over the text states (MODELS.md).
        return self.encoder(text, causal=False, memory=self.image_proj(image))

    def itm_logits(self, fused):
        return self.itm_head(fused[:, 0])


class CaptionDecoder(nn.Module):
    def __init__(self, c: Config, tied_embedding: Optional[nn.Embedding]):
        super().__init__()
        self.image_proj = nn.Linear(c.vision_width, c.text_width)
        self.encoder = Encoder(c.caption_layers, c.text_width, c.text_heads, c.activation, cross=True)
        self.final_layer_norm = nn.LayerNorm(c.text_width, eps=1e-5)
        # A tied head reads the token embedding through a plain attribute (not registered
        # as a submodule, so no second name appears in state_dict()).
        self._tied = [tied_embedding] if tied_embedding is not None else None
        if tied_embedding is None:
            self.lm_head = nn.Linear(c.text_width, c.vocab_size, bias=False)

    def forward(self, text, image):
        """-> logits [B, T, V]; position t predicts token t+1."""
        h = self.final_layer_norm(self.encoder(text, causal=True, memory=self.image_proj(image)))
        w = self._tied[0].weight if self._tied is not None else self.lm_head.weight
        return F.linear(h, w)


class ClipModel(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        if c.contrastive not in ("clip", "siglip"):
            raise ValueError(f"unknown contrastive objective '{c.contrastive}'")
        self.config = c
        self.vision_model = VisionTransformer(c)
        self.visual_projection = nn.Linear(c.vision_width, c.embed_dim, bias=False)
        self.text_model = TextTransformer(c)
        self.text_projection = nn.Linear(c.text_width, c.embed_dim, bias=False)
        siglip = c.contrastive == "siglip"
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0) if siglip else math.log(1 / 0.07)))
        if siglip:
            self.logit_bias = nn.Parameter(torch.tensor(-10.0))
        if c.fusion_layers > 0:
            self.fusion_model = FusionTransformer(c)
        if c.caption_layers > 0:
            tie = self.text_model.embeddings.token_embedding if c.tie_lm_head else None
            self.caption_model = CaptionDecoder(c, tie)

    def encode(self, images, ids):
        """Both towers once: (vision hidden, text hidden, image_emb, text_emb), embeddings L2-normalised."""
        vh, vp = self.vision_model(images)
        th, tp = self.text_model(ids)
        return vh, th, l2_normalize(self.visual_projection(vp)), l2_normalize(self.text_projection(tp))


# ----------------------------------------------------------------------------- losses
def l2_normalize(x):
    return x / x.square().sum(dim=-1, keepdim=True).sqrt()


def clip_loss(image, text, logit_scale):
    logits = image @ text.t() * logit_scale.exp()
    labels = torch.arange(image.shape[0], device=image.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


def siglip_loss(image, text, t_prime, bias):
    B = image.shape[0]
    logits = image @ text.t() * t_prime.exp() + bias
    z = 2 * torch.eye(B, dtype=logits.dtype, device=logits.device) - 1
    return -F.logsigmoid(z * logits).sum() / B


def cyclic_negatives(batch: int) -> List[int]:
    return [(i + batch - 1) % batch for i in range(batch)]


def itm_loss(fusion: FusionTransformer, text_hidden, image_hidden, neg_image: List[int],
             neg_text: Optional[List[int]] = None):
    B = text_hidden.shape[0]
    dev = text_hidden.device
    texts = [text_hidden, text_hidden]
    images = [image_hidden, image_hidden[torch.tensor(neg_image, device=dev)]]
    if neg_text:
        texts.append(text_hidden[torch.tensor(neg_text, device=dev)])
        images.append(image_hidden)
    logits = fusion.itm_logits(fusion(torch.cat(texts), torch.cat(images)))
    labels = torch.zeros(len(texts) * B, dtype=torch.long, device=dev)
    labels[:B] = 1
    return F.cross_entropy(logits, labels)


IGNORE = -100


def caption_targets(ids, eot_token_id: int):
    """[B, T-1]: position t predicts ids[t+1], up to the first EOT; -100 after it."""
    targets = ids[:, 1:].clone()
    T1 = targets.shape[1]
    is_eot = targets == eot_token_id
    pos = torch.arange(T1, device=ids.device).expand_as(targets)
    stop = torch.where(is_eot, pos, torch.full_like(pos, T1)).min(dim=1, keepdim=True).values
    targets[pos > stop] = IGNORE
    return targets


def caption_loss(logits, ids, eot_token_id: int):
    B, T, V = logits.shape
    targets = caption_targets(ids, eot_token_id)
    return F.cross_entropy(logits[:, :T - 1].reshape(-1, V), targets.reshape(-1), ignore_index=IGNORE)


def compute_losses(model: ClipModel, images, ids, contrastive=1.0, itm=0.0, caption=0.0,
                   neg_image: Optional[List[int]] = None, neg_text: Optional[List[int]] = None):
    """mmgrad's compute_losses (models/objectives.cpp) with given ITM negatives (cyclic
    image negatives by default). Returns (total, {part: loss})."""
    c = model.config
    vh, th, img, txt = model.encode(images, ids)
    parts = {}
    total = None

    def add(name, weight, loss):
        nonlocal total
        parts[name] = loss
        total = loss * weight if total is None else total + loss * weight

    if contrastive > 0:
        if c.contrastive == "siglip":
            add("siglip", contrastive, siglip_loss(img, txt, model.logit_scale, model.logit_bias))
        else:
            add("clip", contrastive, clip_loss(img, txt, model.logit_scale))
    if itm > 0:
        if neg_image is None:
            neg_image = cyclic_negatives(images.shape[0])
        add("itm", itm, itm_loss(model.fusion_model, th, vh, neg_image, neg_text))
    if caption > 0:
        add("caption", caption, caption_loss(model.caption_model(th, vh), ids, c.eot_token_id))
    return total, parts


# ----------------------------------------------------------------------------- benchmark FLOPs
def step_gemms(c: Config, B: int):
    """Every GEMM of one MODELS.md benchmark step (forward + backward) as
    (name, M, N, K, batch, count): a mirror of clip_step_gemms in bench/bench_common.h, so
    that bench/torch_clip_step.py reports model GFLOP/s over the same FLOP count as
    bench_clip_step. Linear layers: forward, dX (not for the patch embedding: the images need
    no gradient), dW; attention: QK^T, PV and the four products of its backward; ITM over
    2B pairs (positives + one cyclic negative each) when the model has fusion layers."""
    g = []

    def linear(name, rows, n_in, n_out, n, need_dx=True):
        if n <= 0:
            return
        g.append((name + " fwd", rows, n_out, n_in, 1, n))
        if need_dx:
            g.append((name + " dX", rows, n_in, n_out, 1, n))
        g.append((name + " dW", n_out, n_in, rows, 1, n))

    def attention(name, t, s, d, batch, layers):
        if layers <= 0:
            return
        for suffix, M, N, K in (("QK^T", t, s, d), ("PV", t, d, s), ("dP", t, s, d), ("dV", s, d, t),
                                ("dQ", t, d, s), ("dK", s, d, t)):
            g.append((f"{name} {suffix}", M, N, K, batch, layers))

    Wv, Wt, E, P = c.vision_width, c.text_width, c.embed_dim, c.patch_size
    N = c.num_patches
    Nv, T = N + 1, c.context_length
    linear("vis patch", B * N, 3 * P * P, Wv, 1, need_dx=False)
    linear("vis q/k/v/out", B * Nv, Wv, Wv, 4 * c.vision_layers)
    linear("vis fc1", B * Nv, Wv, 4 * Wv, c.vision_layers)
    linear("vis fc2", B * Nv, 4 * Wv, Wv, c.vision_layers)
    attention("vis attn", Nv, Nv, Wv // c.vision_heads, B * c.vision_heads, c.vision_layers)
    linear("txt q/k/v/out", B * T, Wt, Wt, 4 * c.text_layers)
    linear("txt fc1", B * T, Wt, 4 * Wt, c.text_layers)
    linear("txt fc2", B * T, 4 * Wt, Wt, c.text_layers)
    attention("txt attn", T, T, Wt // c.text_heads, B * c.text_heads, c.text_layers)
    linear("visual_projection", B, Wv, E, 1)
    linear("text_projection", B, Wt, E, 1)
    g += [("logits I T^T", B, B, E, 1, 1), ("logits dI", B, E, B, 1, 1), ("logits dT", B, E, B, 1, 1)]
    if c.fusion_layers > 0:
        pairs, L, D = 2 * B, c.fusion_layers, Wt // c.text_heads
        linear("fus image_proj", pairs * Nv, Wv, Wt, 1)
        linear("fus self q/k/v/out", pairs * T, Wt, Wt, 4 * L)
        attention("fus self attn", T, T, D, pairs * c.text_heads, L)
        linear("fus cross q/out", pairs * T, Wt, Wt, 2 * L)
        linear("fus cross k/v", pairs * Nv, Wt, Wt, 2 * L)
        attention("fus cross attn", T, Nv, D, pairs * c.text_heads, L)
        linear("fus fc1", pairs * T, Wt, 4 * Wt, L)
        linear("fus fc2", pairs * T, 4 * Wt, Wt, L)
        linear("fus itm_head", pairs, Wt, 2, 1)
    return g


def step_flops(c: Config, B: int) -> float:
    return sum(2.0 * M * N * K * batch * count for _, M, N, K, batch, count in step_gemms(c, B))

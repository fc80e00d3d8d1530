#!/usr/bin/python3
"""Writes the PyTorch reference cases of tests/models/test_torch_parity.cpp.

    /usr/bin/python3 tools/torch_reference/make_parity_case.py OUT.safetensors

For each case: a model of shared/spec/MODELS.md built by clip_torch.py with random weights
(every parameter perturbed, LayerNorm weights and biases included, so each one matters),
a small batch of inputs, the losses and every parameter's gradient. Weights and inputs are
stored in float32 (what mmgrad loads and runs in float32); the model is then evaluated in
float64 from exactly those float32 values, and the losses, embeddings and gradients are
stored in float64 as the reference.

Tensor names: "<case>/param.<name>", "<case>/grad.<name>" (name = mmgrad's
named_parameters() name), "<case>/input.images" [B, 3, S, S] f32, "<case>/input.ids"
[B, T] i64, "<case>/input.neg_image", "<case>/input.neg_text" [B] i64 (ITM negatives),
"<case>/loss.<part>" and "<case>/loss.total" (scalars), "<case>/out.image_embeds",
"<case>/out.text_embeds" [B, E]. The metadata holds "cases" (comma-separated) and per case
"<case>.config" (the model config as JSON, field names of models/config.h, booleans as 0/1),
"<case>.weights" (objective weights as JSON) and "<case>.negatives" ("cyclic": image
negatives i-1 only, as compute_losses with hard_negatives=false; "given": the stored
image and text negatives, as itm_loss(fusion, ..., neg_image, neg_text)).
"""
import dataclasses
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_torch as ct  # noqa: E402

_DTYPES = {np.float32: "F32", np.float64: "F64", np.int64: "I64", np.int32: "I32"}


def save_safetensors(path, tensors, metadata):
    """The safetensors format by hand: u64 header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.array(arr, order="C", copy=False)  # (np.ascontiguousarray would make scalars 1-D)
        dtype = _DTYPES[arr.dtype.type]
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def randomize(model: ct.ClipModel, gen: torch.Generator):
    """Random float32 weights of a sensible scale: linear weights N(0, 1/fan_in), biases and
    LayerNorm offsets N(0, 0.1^2), LayerNorm gains 1 + N(0, 0.1^2), embeddings N(0, 0.3^2)."""
    out = {}
    c = model.config
    for name, p in model.named_parameters():
        shape = tuple(p.shape)
        r = torch.randn(shape, generator=gen, dtype=torch.float64)
        is_norm = "norm" in name or "layrnorm" in name
        if name == "logit_scale":
            v = torch.tensor(2.0 if c.contrastive == "siglip" else math.log(1 / 0.07) - 0.2, dtype=torch.float64)
        elif name == "logit_bias":
            v = torch.tensor(-3.0, dtype=torch.float64)
        elif is_norm and name.endswith(".weight"):
            v = 1 + 0.1 * r
        elif name.endswith(".bias"):
            v = 0.1 * r
        elif ".embeddings." in name:  # class, patch, position and token embeddings
            if name.endswith("patch_embedding.weight"):
                v = r * (shape[1] * shape[2] * shape[3]) ** -0.5
            else:
                v = 0.3 * r
        else:  # Linear weights [out, in]
            v = r * shape[1] ** -0.5
        out[name] = v.to(torch.float32)
    return out


def make_ids(c: ct.Config, B: int, T: int, gen: torch.Generator):
    """Token ids uniform in [0, V-1) (never the EOT id), one EOT per row at a position in
    [1, T), then padding (id 0) after it in half of the rows and more random tokens in the
    others; one row gets a second EOT later on (pooling and the caption loss use the first)."""
    ids = torch.randint(0, c.vocab_size - 1, (B, T), generator=gen)
    ids[ids == c.eot_token_id] = 0
    eot = torch.randint(1, T, (B,), generator=gen)
    eot[0], eot[1] = 1, T - 1  # the extremes
    if B > 2:
        eot[2] = min(T - 4, max(1, T // 3))
    for b in range(B):
        ids[b, eot[b]] = c.eot_token_id
        if b % 2 == 0:
            ids[b, eot[b] + 1:] = 0
    if B > 2:
        ids[2, int(eot[2]) + 2] = c.eot_token_id  # a second EOT (ignored)
    return ids


def run_case(tag, c: ct.Config, B: int, T: int, weights: dict, negatives: str, seed: int, tensors, meta):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ct.ClipModel(c).double()
    params32 = randomize(model, gen)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params32[name].double())
    names = [n for n, _ in model.named_parameters()]
    assert sorted(names) == sorted(model.state_dict().keys())

    images32 = torch.randn((B, 3, c.image_size, c.image_size), generator=gen, dtype=torch.float32)
    ids = make_ids(c, B, T, gen)
    neg_image = ct.cyclic_negatives(B)
    neg_text = None
    if negatives == "given":
        # Fixed derangements other than the cyclic one: image j = i + 2, text j = i + 3 (mod B).
        neg_image = [(i + 2) % B for i in range(B)]
        neg_text = [(i + 3) % B for i in range(B)]

    total, parts = ct.compute_losses(model, images32.double(), ids, weights["contrastive"], weights["itm"],
                                     weights["caption"], neg_image, neg_text)
    total.backward()
    with torch.no_grad():
        _, _, img_emb, txt_emb = model.encode(images32.double(), ids)

    p = tag + "/"
    for name, prm in model.named_parameters():
        tensors[p + "param." + name] = params32[name].numpy()
        assert prm.grad is not None, f"{name} received no gradient"
        tensors[p + "grad." + name] = prm.grad.numpy()
    tensors[p + "input.images"] = images32.numpy()
    tensors[p + "input.ids"] = ids.numpy().astype(np.int64)
    tensors[p + "input.neg_image"] = np.array(neg_image, dtype=np.int64)
    tensors[p + "input.neg_text"] = np.array(neg_text or [], dtype=np.int64)
    for k, v in parts.items():
        tensors[p + "loss." + k] = v.detach().numpy().reshape(())
    tensors[p + "loss.total"] = total.detach().numpy().reshape(())
    tensors[p + "out.image_embeds"] = img_emb.numpy()
    tensors[p + "out.text_embeds"] = txt_emb.numpy()
    cfg = {k: int(v) if isinstance(v, bool) else v for k, v in dataclasses.asdict(c).items()}  # booleans as 0/1
    meta[tag + ".config"] = json.dumps(cfg)
    meta[tag + ".weights"] = json.dumps(weights)
    meta[tag + ".negatives"] = negatives
    summary = ", ".join(f"{k} {float(v):.6f}" for k, v in parts.items())
    print(f"{tag}: {len(names)} parameter tensors, B={B} T={T}; {summary}; total {float(total):.6f}")


def main():
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} OUT.safetensors", file=sys.stderr)
        return 2
    torch.set_num_threads(1)  # deterministic reductions; the model is small
    tensors, meta = {}, {}
    cases = []

    # 1. clip-tiny as MODELS.md, fusion included (2 layers), plus a 2-layer caption decoder
    #    with its own lm_head: CLIP + ITM (cyclic negatives) + caption, weights 1.
    c1 = dataclasses.replace(ct.preset("clip-tiny"), caption_layers=2)
    run_case("clip_fusion_caption", c1, B=8, T=c1.context_length,
             weights={"contrastive": 1.0, "itm": 1.0, "caption": 1.0}, negatives="cyclic", seed=1234,
             tensors=tensors, meta=meta)
    cases.append("clip_fusion_caption")

    # 2. SigLIP (logit_bias), quick_gelu, lm_head tied to the token embedding, 1 fusion and
    #    1 caption layer, texts shorter than the context, image and text ITM negatives given;
    #    weighted 1, 0.5, 0.25.
    c2 = dataclasses.replace(ct.preset("clip-tiny"), contrastive="siglip", activation="quick_gelu",
                             fusion_layers=1, caption_layers=1, tie_lm_head=True)
    run_case("siglip_tied", c2, B=6, T=20, weights={"contrastive": 1.0, "itm": 0.5, "caption": 0.25},
             negatives="given", seed=99, tensors=tensors, meta=meta)
    cases.append("siglip_tied")

    meta["cases"] = ",".join(cases)
    meta["torch_version"] = torch.__version__
    save_safetensors(sys.argv[1], tensors, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())

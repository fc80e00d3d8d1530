"""The models, losses and AdamW from Python, and whole runs: train, evaluate, load, embed."""
import os
import tempfile

import numpy as np
import pytest

import mmgrad

TINY = dict(image_size=16, patch_size=8, vision_width=32, text_width=32, embed_dim=32, vision_layers=1,
            text_layers=1, vision_heads=2, text_heads=2, fusion_layers=0, caption_layers=0, vocab_size=50,
            eot_token_id=49, context_length=8)


def test_clip_model_has_named_parameters_and_learns_a_batch():
    model = mmgrad.ClipModel("clip-tiny", **TINY)
    params = model.named_parameters()
    assert "vision_model.embeddings.patch_embedding.weight" in params
    assert model.num_parameters() == sum(p.numel() for p in params.values())
    rng = np.random.default_rng(0)
    images = mmgrad.tensor(rng.standard_normal((8, 3, 16, 16)).astype(np.float32))
    ids = rng.integers(1, 48, size=(8, 8))
    ids[:, 5] = 49  # end of text
    opt = mmgrad.AdamW(params, weight_decay=0.1)
    losses = []
    for _ in range(15):
        loss = mmgrad.clip_loss(model.encode_image(images), model.encode_text(ids), model.logit_scale)
        opt.zero_grad()
        loss.backward()
        opt.step(2e-3)
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.7, losses


def test_unknown_model_key_names_the_nearest():
    with pytest.raises(mmgrad.Error, match="did you mean 'vision_width'"):
        mmgrad.ClipModel("clip-tiny", visoin_width=64)


def test_train_evaluate_load_embed_and_caption():
    run_dir = tempfile.mkdtemp(prefix="mmgrad_py_")
    mmgrad.train("shapes-small", run_dir=run_dir, steps=3, image_size=16, patch_size=8, vision_width=32,
                 text_width=32, embed_dim=32, vision_layers=1, text_layers=1, vision_heads=2, text_heads=2,
                 batch_size=16, train_size=2000, tokenizer_vocab=400, eval_size=20)
    ckpt = os.path.join(run_dir, "checkpoint.safetensors")
    assert os.path.exists(ckpt)
    figures = mmgrad.evaluate(ckpt, samples=20)
    assert 0 <= figures["shape_accuracy"] <= 1
    run = mmgrad.load_run(ckpt)
    assert run.step == 3 and run.config["vision_width"] == 32
    texts = run.embed_texts(["a red circle", "a blue square"])
    assert texts.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, rtol=1e-5)
    pixels = np.random.default_rng(0).random((2, 3, 16, 16)).astype(np.float32)
    images = run.embed_images(pixels)
    assert images.shape == (2, 32)
    captions = run.caption(pixels)
    assert len(captions) == 2 and all(isinstance(c, str) for c in captions)
    assert run.encode(["a red circle"]).shape == (1, run.config["context_length"])

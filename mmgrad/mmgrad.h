// mmgrad's public interface in one include: tensors and autograd, the models and losses,
// training (optimizers, schedules, checkpoints, the training loop), data (tokenizers, the
// shapes dataset, images, caption tables), inference and evaluation, and data parallelism.
//
//   #include <mmgrad/mmgrad.h>
//   pkg-config --cflags --libs mmgrad      (after `meson install`)
//
// Everything lives in namespace mmgrad (models in mmgrad::nn, training in mmgrad::train,
// data in mmgrad::data, evaluation in mmgrad::eval, collectives in mmgrad::dist).
// examples/ holds small, tested programs that use it.
#pragma once

// Tensors, ops and autograd.
#include "autograd/engine.h"
#include "autograd/gradcheck.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/error.h"
#include "core/host_transfer_ban.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "core/tensor.h"

// Models and objectives.
#include "models/clip.h"
#include "models/config.h"
#include "models/generate.h"
#include "models/layers.h"
#include "models/losses.h"
#include "models/module.h"
#include "models/objectives.h"

// Training.
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/run_config.h"
#include "train/run_files.h"
#include "train/safetensors.h"
#include "train/step_graph.h"
#include "train/trainer.h"

// Data.
#include "data/bpe.h"
#include "data/caption_table.h"
#include "data/image.h"
#include "data/image_transform.h"
#include "data/shapes.h"
#include "data/shapes_batches.h"
#include "data/tokenizer.h"

// Inference and evaluation.
#include "eval/embedding.h"
#include "eval/loaded_run.h"
#include "eval/retrieval.h"
#include "eval/shapes_eval.h"
#include "eval/table_eval.h"

// Data parallelism.
#include "dist/communicator.h"
#include "dist/grad_reducer.h"

"""Fidelity of a generative (llm) run, teacher-forced: does the backend compute the model's logits
at the precision it declares?

The FP32 reference is the same model run by torch on the CPU in fp32. For a few seeded requests
it generates greedily (its prompt cut to ``PROMPT_TOKENS``, ``GENERATED_TOKENS`` new tokens at
most); then the backend under test is given the reference's whole sequence, prompt and generated
tokens, and returns the logits of every position (``Backend.logits``). Both see the same tokens at
every position, so the comparison never drifts: top-1 agreement and logit error at every
position. Free-running comparison would diverge at once on synthetic weights, whose logits are
nearly flat (two tokens within rounding of each other are common), and tell nothing about
precision.

Judged, as the image workloads' fidelity judges outputs (``fidelity.judge``): the largest logit
error at a position, over the largest reference logit there, against the bound of the precision
the backend declares. The bounds come from the model's own envelope: the same model on the CPU
in bf16, on the same sequences, is an honest bf16 computation; its error e sets the other levels
by their unit roundoff (fp16 and tf32 e/8, fp32 e/65536) and each bound sits at the geometric
mean of neighbouring levels (bf16 2.8 e, fp16 e/2.8, fp32 e/724). Top-1 agreement must also
reach the precision's floor (``TOP1_FLOORS``): near-ties flip under rounding, so the floors are
loose; a backend computing garbage lands far below them.

Reported, not judged: the first position at which the backend's own greedy generation would leave
the reference's. Up to that position teacher-forced and free-running inputs are the same tokens,
so the first generated position where the backend's argmax differs from the reference's token is
exactly where free running diverges.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from hwbench.backends import Backend
from hwbench.quality import fidelity
from hwbench.quality.fidelity import FP32_FLOOR, Envelope

FIDELITY_REQUESTS = 4
PROMPT_TOKENS = 128
GENERATED_TOKENS = 32
REFERENCE_LABEL = "torch cpu fp32, teacher-forced on the reference's greedy tokens"
TRUSTED = "bf16"  # the honest lower-precision computation the envelope is measured with
# Least top-1 agreement per declared precision. The tiny model's own computations on the CPU
# agree at 0.997 (fp16) and 0.977 (bf16) with fp32.
TOP1_FLOORS = {"fp32": 0.98, "tf32": 0.9, "fp16": 0.9, "bf16": 0.8}


def reference_sequences(reference: Any, requests: list[Any]) -> list[tuple[int, np.ndarray]]:
    """(prompt length, prompt + the reference's greedy tokens) for each request."""
    import torch

    out = []
    limit = reference.config.max_seq_len
    for r in requests:
        prompt = np.asarray(r.prompt, dtype=np.int64)[:PROMPT_TOKENS]
        n = max(1, min(int(r.output_tokens), GENERATED_TOKENS, limit - len(prompt)))
        generated = reference.generate(torch.from_numpy(prompt), n)
        out.append((len(prompt), np.concatenate([prompt, np.array(generated, dtype=np.int64)])))
    return out


def _logits(model: Any, seq: np.ndarray) -> np.ndarray:
    import torch

    return model.forward(torch.from_numpy(seq)).float().cpu().numpy()


def envelope(reference: Any, seqs: list[tuple[int, np.ndarray]], ref_logits: np.ndarray,
             error: float) -> Envelope:
    """The model's own bounds per precision, from an honest bf16 computation on the CPU; not
    measured when the error is within what only fp32 reaches."""
    if error <= FP32_FLOOR:
        return Envelope({"fp32": FP32_FLOOR}, f"not measured: within {FP32_FLOOR:g} of the "
                        "FP32 reference's scale, which only an FP32 computation reaches")
    import torch

    from hwbench.workloads.llama import Llama

    trusted = Llama(reference.config, {k: v.to(torch.bfloat16)
                                       for k, v in reference.weights().items()})
    outputs = np.concatenate([_logits(trusted, s) for _, s in seqs])
    e = float(fidelity.scaled_errors(outputs, ref_logits).max())
    if not (np.isfinite(e) and e > 0):
        return Envelope(fidelity.FIXED.bounds, f"fixed bands: the model's bf16 computation "
                        f"gave an error of {e:g}, which bounds nothing")
    bounds = {"fp32": e / math.sqrt(8 * 65536), "fp16": e / math.sqrt(8),
              "bf16": e * math.sqrt(8)}
    method = ("model: bf16 measured by torch on the cpu on the same sequences; fp16 and tf32 "
              "1/8x, fp32 1/65536x; bounds at the geometric mean of neighbouring levels")
    return Envelope(bounds, method, {"bf16": e})


def first_divergence(seqs: list[tuple[int, np.ndarray]], outputs: list[np.ndarray]
                     ) -> list[int | None]:
    """Per sequence: the first generated token the backend's greedy choice would differ on
    (0-based among the generated tokens), or None when it follows the reference throughout."""
    out: list[int | None] = []
    for (n_prompt, seq), logits in zip(seqs, outputs):
        chosen = logits[n_prompt - 1:len(seq) - 1].argmax(axis=1)
        differ = np.flatnonzero(chosen != seq[n_prompt:])
        out.append(int(differ[0]) if len(differ) else None)
    return out


def check(backend: Backend, artifact: Any, requests: list[Any]
          ) -> tuple[dict[str, Any], str | None]:
    """The fidelity section of an llm run, and why the run is invalid (else None)."""
    import torch

    info = backend.info()
    reference = artifact.build(torch.device("cpu"), torch.float32)
    seqs = reference_sequences(reference, requests)
    ref = [_logits(reference, s) for _, s in seqs]
    outputs = []
    for (_, seq), r in zip(seqs, ref):
        out = np.asarray(backend.logits(seq), dtype=np.float32)
        if out.shape != r.shape:
            raise ValueError(f"backend {info.name}: logits of shape {out.shape} for a sequence "
                             f"of {len(seq)} tokens, expected {r.shape}")
        outputs.append(out)
    ref_all, out_all = np.concatenate(ref), np.concatenate(outputs)
    figures = fidelity.compare(out_all, ref_all)
    env = envelope(reference, seqs, ref_all, figures["max_rel_error"])
    section, failure = fidelity.judge(figures, env, info.name, info.precision, False, "fp32")
    expected = section["expected_precision"]
    floor = TOP1_FLOORS.get(expected)
    if floor is not None and figures["top1_agreement"] < floor and failure is None:
        failure = (f"backend {info.name} declares {expected} but its top-1 agrees with the FP32 "
                   f"reference at {figures['top1_agreement']:.3f} of positions, below "
                   f"{expected}'s floor of {floor}")
        section["findings"].append(failure)
        section["passed"] = False
    divergence = first_divergence(seqs, outputs)
    known = [d for d in divergence if d is not None]
    section["reference"] = REFERENCE_LABEL
    section["teacher_forced"] = {
        "requests": len(seqs),
        "prompt_tokens": [n for n, _ in seqs],
        "generated_tokens": [len(s) - n for n, s in seqs],
        "top1_floor": floor,
        "first_divergence": divergence,
        "first_divergence_min": min(known) if known else None,
        "judged": "logit error against the declared precision's bound, top-1 agreement "
                  "against its floor; the first free-running divergence is reported, not judged",
    }
    return section, failure

"""Benchmark: CTranslate2 int8 vs Transformers fp32 vs Transformers dynamic-int8 on one Marian
architecture, plus the offline Bergamot engine.

Engines (:data:`ENGINES`): the two Transformers peers (``generate``, ``--batch-size`` sentences
per call; ``hf-dynamic-int8-b64`` the int8 peer at 64), CTranslate2 int8 and float32 at the
peers' batch size, CTranslate2 with the translate stage's own settings (``params.yaml``:
``batch_type=tokens``, 2048 source tokens per batch, 1 x 2 threads) and ``ct2-int8-tuned``
(2048-token batches, 2 x 1 threads, and ``CT2_FORCE_CPU_ISA`` set by :func:`ct2_cpu_isa`:
CTranslate2 picks AVX2 for its own kernels on AMD CPUs, so the tuned engine asks for AVX512 where
the CPU has it, and for AVX2 when torch is capped to AVX2 (``ATEN_CPU_CAPABILITY=avx2`` /
``ONEDNN_MAX_CPU_ISA=AVX2``, the simulated AVX2 machine); never an ISA the CPU lacks). The peers also run with 1 torch thread (``-t1``): on a shared machine
a 2-thread torch process stalls at every intra-op barrier while another process holds a core;
a Transformers run stops starting new batches after ``--time-budget`` seconds. CTranslate2 engines translate ``--sentences`` sentences; the slower
Transformers peers ``--peer-sentences`` of them (tokens/s is per generated token either way).
Greedy and, with ``--beams 1,4``, beam 4 (``--beam-sentences`` sentences).

The Marian model has the opus-mt shape (6+6 layers, d_model 512, 8 heads, FFN 2048, 32k
vocabulary) with random weights; nothing is downloaded. Every engine decodes greedily the same
random source sentences, and the output length is fixed (min = max decoding length), so all
engines generate exactly the same number of tokens whatever the weights. Each measurement runs
in its own process (peak RSS is that process's), engines alternate within each repeat, and the
median over repeats is reported (each after an untimed warm-up call). Bergamot is timed on real English sentences (XQuAD-R).

    python benchmarks/bench_translation.py --repeats 3 --out bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peak_memory import peak_rss_mb

os.environ.setdefault("HF_HUB_OFFLINE", "1")

VOCAB_SIZE = 32000


def ct2_cpu_isa(environ=os.environ, cpuinfo: str | None = None) -> dict[str, str]:
    """``{"CT2_FORCE_CPU_ISA": ...}`` for the tuned engine: ``AVX2`` when this run simulates an
    AVX2-only CPU (torch/oneDNN capped by the env vars above), ``AVX512`` where the CPU has
    AVX-512 (F, BW, VL, DQ), else nothing (CTranslate2 picks)."""
    if environ.get("ATEN_CPU_CAPABILITY", "").lower() in ("avx2", "default") or \
            environ.get("ONEDNN_MAX_CPU_ISA", "").upper().startswith(("AVX2", "SSE")):
        return {"CT2_FORCE_CPU_ISA": "AVX2"}
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags = next((set(line.split(":", 1)[1].split()) for line in cpuinfo.splitlines()
                  if line.startswith("flags")), set())
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return {"CT2_FORCE_CPU_ISA": "AVX512"}
    return {}
#: name -> settings; ct2 "batch": None = --batch-size examples, else source tokens per batch.
ENGINES = {
    "hf-fp32": {"kind": "hf"},
    "hf-fp32-t1": {"kind": "hf", "threads": 1},
    "hf-dynamic-int8": {"kind": "hf", "quantize": True},
    "hf-dynamic-int8-t1": {"kind": "hf", "quantize": True, "threads": 1},
    "hf-dynamic-int8-t1-b64": {"kind": "hf", "quantize": True, "threads": 1, "batch_size": 64},
    "ct2-float32": {"kind": "ct2", "compute_type": "float32"},
    "ct2-int8": {"kind": "ct2", "compute_type": "int8"},
    "ct2-int8-stage": {"kind": "ct2", "compute_type": "int8", "tokens": 2048, "inter": 1,
                       "intra": 2},
    "ct2-int8-tuned": {"kind": "ct2", "compute_type": "int8", "tokens": 2048, "inter": 2,
                       "intra": 1, "env": ct2_cpu_isa()},
}
#: engines timed with beam 4 too (the others greedy only: beam search is 3-4x slower)
BEAM_ENGINES = ("hf-fp32-t1", "hf-dynamic-int8-t1", "ct2-int8", "ct2-int8-tuned")


def build_model(folder: Path, d_model: int = 512, layers: int = 6) -> None:
    """Random opus-mt-shaped Marian model (HF format) and its CTranslate2 int8 conversion
    (``d_model``/``layers`` smaller only for tests; FFN = 4 x d_model, heads = d_model / 64)."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    import ctranslate2

    hf = folder / "hf"
    hf.mkdir(parents=True)
    # The tokenizer only needs a valid sentencepiece file; the vocabulary is vocab.json.
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["a b c d e f g h i j k l m n o p"] * 20),
        model_prefix=str(hf / "sp"), vocab_size=20, model_type="char", bos_id=-1, eos_id=1,
        unk_id=0, pad_id=-1, minloglevel=2)
    vocab = {"<unk>": 0, "</s>": 1, **{f"▁w{i}": i for i in range(2, VOCAB_SIZE - 1)},
             "<pad>": VOCAB_SIZE - 1}
    (hf / "vocab.json").write_text(json.dumps(vocab))
    for name in ("source.spm", "target.spm"):
        (hf / name).write_bytes((hf / "sp.model").read_bytes())
    torch.manual_seed(0)
    config = MarianConfig(
        vocab_size=VOCAB_SIZE, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=max(1, d_model // 64), decoder_attention_heads=max(1, d_model // 64),
        encoder_ffn_dim=4 * d_model, decoder_ffn_dim=4 * d_model, max_position_embeddings=512, pad_token_id=VOCAB_SIZE - 1,
        eos_token_id=1, decoder_start_token_id=VOCAB_SIZE - 1, forced_eos_token_id=None,
        share_encoder_decoder_embeddings=True)
    MarianMTModel(config).save_pretrained(hf)
    MarianTokenizer(str(hf / "source.spm"), str(hf / "target.spm"),
                    str(hf / "vocab.json")).save_pretrained(hf)
    ctranslate2.converters.TransformersConverter(str(hf)).convert(
        str(folder / "ct2"), quantization="int8", force=True)


def source_ids(sentences: int, length: int) -> list[list[int]]:
    """Fixed pseudo-random source token ids (no specials), then </s>."""
    import random

    rng = random.Random(13)
    return [[rng.randrange(2, VOCAB_SIZE - 1) for _ in range(length)] + [1]
            for _ in range(sentences)]



def sentence_count(engine: str, args: argparse.Namespace) -> int:
    if args.beam > 1:
        return args.beam_sentences
    # Token-budget engines need several full batches; the rest reach steady state sooner.
    return args.sentences if ENGINES[engine].get("tokens") else \
        min(args.sentences, args.peer_sentences)


def run_engine(engine: str, folder: Path, args: argparse.Namespace) -> dict:
    """One measurement, in this process: generated tokens/s and peak RSS."""
    spec = ENGINES[engine]
    sources = source_ids(sentence_count(engine, args), args.source_length)
    batch_size = spec.get("batch_size", args.batch_size)
    if spec["kind"] == "ct2":
        import ctranslate2

        translator = ctranslate2.Translator(
            str(folder / "ct2"), compute_type=spec["compute_type"],
            inter_threads=spec.get("inter", 1), intra_threads=spec.get("intra", args.threads))
        tokens = [[f"▁w{i}" if i > 1 else "</s>" for i in row] for row in sources]
        translator.translate_batch(tokens[:2], beam_size=1, max_decoding_length=4)  # warm-up
        start = time.perf_counter()
        results = translator.translate_batch(
            tokens, max_batch_size=spec.get("tokens", batch_size),
            batch_type="tokens" if spec.get("tokens") else "examples", beam_size=args.beam,
            min_decoding_length=args.output_length, max_decoding_length=args.output_length)
        seconds = time.perf_counter() - start
        generated = sum(len(r.hypotheses[0]) for r in results)
    else:
        import torch
        from transformers import MarianMTModel

        torch.set_num_threads(spec.get("threads", args.threads))
        model = MarianMTModel.from_pretrained(str(folder / "hf")).eval()
        if spec.get("quantize"):
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                           dtype=torch.qint8)
        with torch.inference_mode():  # warm-up
            warm = torch.tensor(sources[:2])
            model.generate(input_ids=warm, attention_mask=torch.ones_like(warm), num_beams=1,
                           do_sample=False, max_new_tokens=4)
        generated, start = 0, time.perf_counter()
        with torch.inference_mode():
            for offset in range(0, len(sources), batch_size):
                if offset and time.perf_counter() - start > args.time_budget:
                    break  # a starved 2-thread run on a busy machine: rate of what was done
                batch = torch.tensor(sources[offset:offset + batch_size])
                out = model.generate(input_ids=batch, attention_mask=torch.ones_like(batch),
                                     num_beams=args.beam, do_sample=False,
                                     min_new_tokens=args.output_length,
                                     max_new_tokens=args.output_length)
                generated += (out.shape[1] - 1) * out.shape[0]  # minus the start token
        seconds = time.perf_counter() - start
        sources = sources[:generated // args.output_length]
    return {"engine": engine, "beam": args.beam, "sentences": len(sources),
            "generated_tokens": generated, "seconds": seconds,
            "tokens_per_second": generated / seconds,
            "peak_rss_mb": peak_rss_mb()}


def run_bergamot(args: argparse.Namespace) -> dict:
    """Source words/s of the Bergamot en->pt engine on real English sentences."""
    from hybrid_retrieval.mt_quality import xquad_sets
    from hybrid_retrieval.translation import BergamotEngine

    mirror = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    try:
        _, sentences = xquad_sets(mirror, tempfile.mkdtemp(), "de")
        texts = sentences.sources[:args.bergamot_sentences]
    except Exception:  # noqa: BLE001 - no mirror (CI): fixed English sentences
        texts = [f"The committee approved plan number {i} after a long debate about the budget."
                 for i in range(args.bergamot_sentences)]
    words = sum(len(t.split()) for t in texts)
    out, seconds = {}, {}
    for threads in [args.bergamot_threads] if args.bergamot_threads else \
            sorted({1, args.threads}):
        engine = BergamotEngine("en", "pt", threads=threads)
        engine.translate(["Warm-up sentence."])  # untimed
        start = time.perf_counter()
        engine.translate(texts)
        seconds[str(threads)] = time.perf_counter() - start
        out[f"threads_{threads}"] = words / seconds[str(threads)]
    return {"engine": "bergamot en->pt", "sentences": len(texts), "words": words,
            "words_per_second": out, "seconds_by_threads": seconds,
            "peak_rss_mb": peak_rss_mb()}


def _child(args: argparse.Namespace, folder: Path, what: str, **overrides) -> dict:
    """Run one measurement in a fresh process (its own peak RSS, its own CT2 env vars)."""
    values = {**{k: getattr(args, k) for k in CHILD_ARGS}, **overrides}
    command = [sys.executable, __file__, "--workdir", str(folder), "--child", what] + [
        f"--{k.replace('_', '-')}={v}" for k, v in values.items()]
    env = dict(os.environ, **ENGINES.get(what, {}).get("env", {}))
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


CHILD_ARGS = ("sentences", "peer_sentences", "beam_sentences", "source_length", "output_length",
              "batch_size", "threads", "bergamot_sentences", "beam", "d_model", "layers",
              "time_budget")


def run(args: argparse.Namespace) -> dict:
    """All measurements; the result as a dict (what ``--out`` writes)."""
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="bench_nmt_"))
    if not (folder / "ct2" / "model.bin").is_file():
        print(f"building the random opus-mt-shaped model in {folder} ...", file=sys.stderr)
        build_model(folder, d_model=args.d_model, layers=args.layers)
    engines = [e for e in args.engines.split(",") if e]
    beams = [int(b) for b in str(args.beams).split(",")]
    result: dict = {"setup": {k: v for k, v in vars(args).items()
                              if k not in ("child", "out", "workdir")},
                    "engines": {name: ENGINES[name] for name in engines}}
    for beam in beams:
        chosen = engines if beam == 1 else [e for e in engines if e in BEAM_ENGINES]
        runs: dict[str, list[dict]] = {engine: [] for engine in chosen}
        for repeat in range(args.repeats):
            for engine in chosen if repeat % 2 == 0 else chosen[::-1]:  # alternate the order
                runs[engine].append(_child(args, folder, engine, beam=beam))
                print(f"beam {beam} repeat {repeat + 1} {engine}: "
                      f"{runs[engine][-1]['tokens_per_second']:.0f} tok/s", file=sys.stderr)
        summary = {engine: {"tokens_per_second_median": statistics.median(
                                r["tokens_per_second"] for r in rs),
                            "tokens_per_second_all": [round(r["tokens_per_second"], 1)
                                                      for r in rs],
                            "peak_rss_mb_max": max(r["peak_rss_mb"] for r in rs),
                            "sentences": rs[0]["sentences"],
                            "generated_tokens": rs[0]["generated_tokens"]}
                   for engine, rs in runs.items()}
        for peer in ("hf-fp32", "hf-dynamic-int8"):  # against the peer's best variant
            variants = [e for e in summary if e == peer or e.startswith(peer + "-")]
            if variants:
                best = max(variants, key=lambda e: summary[e]["tokens_per_second_median"])
                base = summary[best]["tokens_per_second_median"]
                for row in summary.values():
                    row[f"x_{peer.replace('-', '_')}"] = row["tokens_per_second_median"] / base
                    row[f"x_{peer.replace('-', '_')}_ref"] = best
        result["marian_opus_mt_shape" if beam == 1 else f"beam_{beam}"] = summary
    if args.bergamot_sentences:
        try:
            result["bergamot"] = _child(args, folder, "bergamot")
        except RuntimeError as exc:
            result["bergamot"] = {"skipped": str(exc)[-500:]}
    if args.scaling:
        result["scaling"] = scaling(args, folder)
    return result


def scaling(args: argparse.Namespace, folder: Path) -> dict:
    """Time of ct2-int8-tuned and of Bergamot at 1x, 2x, 4x the input (medians of
    ``repeats - 1`` alternating runs)."""
    factors = (1, 2, 4)
    out = {}
    for what, size_arg, base in (("ct2-int8-tuned", "sentences", args.scaling_sentences),
                                 ("bergamot", "bergamot_sentences",
                                  args.scaling_bergamot_sentences if args.bergamot_sentences
                                  else 0)):
        if not base:
            continue
        seconds = {f: [] for f in factors}
        try:
            for repeat in range(max(1, args.repeats - 1)):
                for f in factors if repeat % 2 == 0 else factors[::-1]:
                    row = _child(args, folder, what, **{size_arg: base * f,
                                                         "bergamot_threads": args.threads})
                    seconds[f].append(row["seconds"] if "seconds" in row else
                                      row["seconds_by_threads"][str(args.threads)])
        except RuntimeError as exc:
            out[what] = {"skipped": str(exc)[-300:]}
            continue
        medians = {f: statistics.median(v) for f, v in seconds.items()}
        out[what] = {"inputs": {f"{f}x": base * f for f in factors},
                     "seconds": {f"{f}x": round(medians[f], 3) for f in factors},
                     "time_ratio_vs_1x": {f"{f}x": round(medians[f] / medians[1], 2)
                                          for f in factors}}
    return out


def print_results(result: dict) -> None:
    for key in [k for k in result if k == "marian_opus_mt_shape" or k.startswith("beam_")]:
        print(f"{key}: {'engine':<20}{'tok/s':>8}{'x HF fp32':>10}{'x HF int8':>10}"
              f"{'peak RSS MB':>12}")
        for engine, row in result[key].items():
            print(f"  {engine:<{len(key) + 19}}{row['tokens_per_second_median']:>8.0f}"
                  f"{row.get('x_hf_fp32', float('nan')):>10.2f}"
                  f"{row.get('x_hf_dynamic_int8', float('nan')):>10.2f}"
                  f"{row['peak_rss_mb_max']:>12.0f}")
    bergamot = result.get("bergamot")
    if bergamot and "words" in bergamot:
        print(f"bergamot en->pt: {bergamot['words']} words, "
              + ", ".join(f"{k} {v:.0f} words/s" for k, v in bergamot["words_per_second"].items())
              + f", peak RSS {bergamot['peak_rss_mb']:.0f} MB")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sentences", type=int, default=256, help="per CTranslate2 run")
    p.add_argument("--peer-sentences", type=int, default=64, help="per Transformers run")
    p.add_argument("--beam-sentences", type=int, default=16, help="per beam-4 run")
    p.add_argument("--source-length", type=int, default=24)
    p.add_argument("--output-length", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--time-budget", type=float, default=15.0,
                   help="a Transformers run stops starting batches after this many seconds")
    p.add_argument("--beams", default="1,4")
    p.add_argument("--beam", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--bergamot-sentences", type=int, default=400, help="0 = skip Bergamot")
    p.add_argument("--bergamot-threads", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--scaling", action="store_true", help="also time 1x/2x/4x inputs")
    p.add_argument("--scaling-sentences", type=int, default=128, help="1x for ct2-int8-tuned")
    p.add_argument("--scaling-bergamot-sentences", type=int, default=50, help="1x for Bergamot")
    p.add_argument("--d-model", type=int, default=512, help="tiny values for tests only")
    p.add_argument("--layers", type=int, default=6, help="tiny values for tests only")
    p.add_argument("--workdir", help="reuse a model folder (default: a temporary one)")
    p.add_argument("--out", help="also write the results as JSON here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


def main() -> None:
    args = parser().parse_args()
    if args.child:
        result = run_bergamot(args) if args.child == "bergamot" else \
            run_engine(args.child, Path(args.workdir), args)
        print(json.dumps(result))
        return
    result = run(args)
    print_results(result)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

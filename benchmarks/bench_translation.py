"""Benchmark: CTranslate2 int8 vs Transformers fp32 vs Transformers dynamic-int8 on one Marian
architecture, plus the offline Bergamot engine.

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
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

VOCAB_SIZE = 32000
ENGINES = ("ct2-int8", "hf-fp32", "hf-dynamic-int8")


def build_model(folder: Path) -> None:
    """Random opus-mt-shaped Marian model (HF format) and its CTranslate2 int8 conversion."""
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
        vocab_size=VOCAB_SIZE, d_model=512, encoder_layers=6, decoder_layers=6,
        encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048,
        decoder_ffn_dim=2048, max_position_embeddings=512, pad_token_id=VOCAB_SIZE - 1,
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


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the
    parent across fork+exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_engine(engine: str, folder: Path, args: argparse.Namespace) -> dict:
    """One measurement, in this process: generated tokens/s and peak RSS."""
    sources = source_ids(args.sentences, args.source_length)
    if engine == "ct2-int8":
        import ctranslate2

        translator = ctranslate2.Translator(str(folder / "ct2"), compute_type="int8",
                                            inter_threads=1, intra_threads=args.threads)
        tokens = [[f"▁w{i}" if i > 1 else "</s>" for i in row] for row in sources]
        translator.translate_batch(tokens[:2], beam_size=1, max_decoding_length=4)  # warm-up
        start = time.perf_counter()
        results = translator.translate_batch(
            tokens, max_batch_size=args.batch_size, beam_size=1,
            min_decoding_length=args.output_length, max_decoding_length=args.output_length)
        seconds = time.perf_counter() - start
        generated = sum(len(r.hypotheses[0]) for r in results)
    else:
        import torch
        from transformers import MarianMTModel

        torch.set_num_threads(args.threads)
        model = MarianMTModel.from_pretrained(str(folder / "hf")).eval()
        if engine == "hf-dynamic-int8":
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                           dtype=torch.qint8)
        with torch.inference_mode():  # warm-up
            warm = torch.tensor(sources[:2])
            model.generate(input_ids=warm, attention_mask=torch.ones_like(warm), num_beams=1,
                           do_sample=False, max_new_tokens=4)
        generated, start = 0, time.perf_counter()
        with torch.inference_mode():
            for offset in range(0, len(sources), args.batch_size):
                batch = torch.tensor(sources[offset:offset + args.batch_size])
                out = model.generate(input_ids=batch, attention_mask=torch.ones_like(batch),
                                     num_beams=1, do_sample=False,
                                     min_new_tokens=args.output_length,
                                     max_new_tokens=args.output_length)
                generated += (out.shape[1] - 1) * out.shape[0]  # minus the start token
        seconds = time.perf_counter() - start
    return {"engine": engine, "generated_tokens": generated, "seconds": seconds,
            "tokens_per_second": generated / seconds,
            "peak_rss_mb": peak_rss_mb()}


def run_bergamot(args: argparse.Namespace) -> dict:
    """Source words/s of the Bergamot en->pt engine on real English sentences."""
    from hybrid_retrieval.mt_quality import xquad_sets
    from hybrid_retrieval.translation import BergamotEngine

    mirror = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    _, sentences = xquad_sets(mirror, tempfile.mkdtemp(), "de")
    texts = sentences.sources[:args.bergamot_sentences]
    words = sum(len(t.split()) for t in texts)
    out = {}
    for threads in (1, args.threads):
        engine = BergamotEngine("en", "pt", threads=threads)
        start = time.perf_counter()
        engine.translate(texts)
        out[f"threads_{threads}"] = words / (time.perf_counter() - start)
    return {"engine": "bergamot en->pt", "sentences": len(texts), "words": words,
            "words_per_second": out,
            "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--source-length", type=int, default=24)
    parser.add_argument("--output-length", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bergamot-sentences", type=int, default=400)
    parser.add_argument("--workdir", help="reuse a model folder (default: a temporary one)")
    parser.add_argument("--out", help="also write the results as JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = run_bergamot(args) if args.child == "bergamot" else \
            run_engine(args.child, Path(args.workdir), args)
        print(json.dumps(result))
        return

    folder = Path(args.workdir or tempfile.mkdtemp(prefix="bench_nmt_"))
    if not (folder / "ct2" / "model.bin").is_file():
        print(f"building the random opus-mt-shaped model in {folder} ...", file=sys.stderr)
        build_model(folder)
    child = [sys.executable, __file__, "--workdir", str(folder)] + [
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
        if k in ("sentences", "source_length", "output_length", "batch_size", "threads",
                 "bergamot_sentences")]
    runs: dict[str, list[dict]] = {engine: [] for engine in ENGINES}
    for repeat in range(args.repeats):
        for engine in ENGINES if repeat % 2 == 0 else ENGINES[::-1]:  # alternate the order
            done = subprocess.run(child + ["--child", engine], capture_output=True, text=True,
                                  check=True)
            runs[engine].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"repeat {repeat + 1} {engine}: "
                  f"{runs[engine][-1]['tokens_per_second']:.0f} tok/s", file=sys.stderr)
    summary = {engine: {"tokens_per_second_median": statistics.median(
                            r["tokens_per_second"] for r in rs),
                        "tokens_per_second_all": [round(r["tokens_per_second"], 1) for r in rs],
                        "peak_rss_mb_max": max(r["peak_rss_mb"] for r in rs),
                        "generated_tokens": rs[0]["generated_tokens"]}
               for engine, rs in runs.items()}
    base = summary["hf-fp32"]["tokens_per_second_median"]
    for row in summary.values():
        row["speedup_vs_hf_fp32"] = row["tokens_per_second_median"] / base
    done = subprocess.run(child + ["--child", "bergamot"], capture_output=True, text=True,
                          check=True)
    bergamot = json.loads(done.stdout.strip().splitlines()[-1])
    result = {"setup": {k: v for k, v in vars(args).items() if k not in ("child", "out")},
              "marian_opus_mt_shape": summary, "bergamot": bergamot}

    print(f"{'engine':<18}{'tok/s (median)':>16}{'x HF fp32':>11}{'peak RSS MB':>13}")
    for engine, row in summary.items():
        print(f"{engine:<18}{row['tokens_per_second_median']:>16.0f}"
              f"{row['speedup_vs_hf_fp32']:>11.2f}{row['peak_rss_mb_max']:>13.0f}")
    print(f"bergamot en->pt: {bergamot['words']} words, "
          + ", ".join(f"{k} {v:.0f} words/s" for k, v in bergamot["words_per_second"].items())
          + f", peak RSS {bergamot['peak_rss_mb']:.0f} MB")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

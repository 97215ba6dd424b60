"""Training: parameter validation, a full tiny run, resume after SIGKILL, torchrun with 2 ranks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
import yaml
from safetensors.torch import load_file

from hybrid_retrieval.encoder import encode_texts, load_encoder
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.schemas import SHARD
from hybrid_retrieval.shards import pair_kind, write_shards
from hybrid_retrieval.precision import resolve_precision
from hybrid_retrieval.training import TrainConfig, linear_warmup_decay, train

REPO = Path(__file__).resolve().parents[1]
WORDS = ["capital", "France", "Paris", "city", "largest", "Debian", "package", "install",
         "Hauptstadt", "capitale", "cidade", "maior", "apt-get", "question", "answer"]


def shard_rows(n_pairs: int = 48, langs=("en", "pt")) -> pa.Table:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_pairs):
        words = rng.choice(WORDS, size=6)
        for q in langs:
            for p in langs:
                rows.append({"pair_id": f"id{i}", "query_lang": q, "passage_lang": p,
                             "query": f"{q} {' '.join(words[:3])} {i}?",
                             "passage": f"{p} {' '.join(words)} number {i}.", "source": "qa",
                             "kind": pair_kind(q, p)})
    return pa.Table.from_pylist(rows, schema=SHARD)


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shards") / "parallel"
    write_shards(shard_rows(), folder, rows_per_shard=64)
    return folder


def params(**train_overrides) -> dict:
    train_cfg = {"steps": 12, "batch_size": 4, "max_length": 32, "learning_rate": 1e-3,
                 "weight_decay": 0.01, "warmup_steps": 2, "temperature": 0.05,
                 "max_grad_norm": 1.0, "grad_accum_steps": 1, "freeze_word_embeddings": True,
                 "language_sampling": "uniform", "query_prefix": "query: ",
                 "passage_prefix": "passage: ", "precision": "fp32", "device": "cpu",
                 "torch_threads": 1, "checkpoint_every": 4, "keep_checkpoints": 1}
    train_cfg.update(train_overrides)
    return {"seed": 13, "mix_ratio": 0.5, "train": train_cfg}


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


# --- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, name", [
    ("mix_ratio", 1.2, "mix_ratio"), ("mix_ratio", "0.5", "mix_ratio"),
    ("mix_ratio", True, "mix_ratio"), ("mix_ratio", -0.1, "mix_ratio"),
    ("seed", 1.5, "seed"),
    ("batch_size", 1, "train.batch_size"), ("temperature", 0, "train.temperature"),
    ("temperature", -1.0, "train.temperature"), ("learning_rate", 0.0, "train.learning_rate"),
    ("steps", 0, "train.steps"), ("steps", "10", "train.steps"),
    ("max_length", 2, "train.max_length"), ("warmup_steps", 100, "train.warmup_steps"),
    ("grad_accum_steps", 0, "train.grad_accum_steps"), ("precision", "fp8", "train.precision"),
    ("precision", "fp16", "train.precision"), ("language_sampling", "x", "train.language_sampling"),
    ("freeze_word_embeddings", "yes", "train.freeze_word_embeddings"),
    ("device", "tpu", "train.device"), ("torch_threads", -1, "train.torch_threads"),
    ("bogus_key", 1, "train.bogus_key"),
])
def test_bad_params_name_the_param(key, value, name):
    p = params()
    if key in ("mix_ratio", "seed"):
        p[key] = value
    else:
        p["train"][key] = value
    with pytest.raises(PipelineError, match=f"'{name}'"):
        TrainConfig.from_params(p)


def test_missing_params():
    p = params()
    del p["mix_ratio"]
    with pytest.raises(PipelineError, match="'mix_ratio' is missing"):
        TrainConfig.from_params(p)
    p = params()
    del p["train"]["steps"]
    with pytest.raises(PipelineError, match="'train.steps' is missing"):
        TrainConfig.from_params(p)
    config = TrainConfig.from_params({"seed": 0, "mix_ratio": 1, "train": {
        "steps": 5, "batch_size": 2, "max_length": 16}})
    assert (config.learning_rate, config.weight_decay, config.temperature) == (3e-5, 0.01, 0.05)
    assert config.mix_ratio == 1.0 and isinstance(config.mix_ratio, float)


def test_linear_warmup_then_decay():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = linear_warmup_decay(optimizer, warmup_steps=3, total_steps=10)
    rates = []
    for _ in range(10):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[3:] == sorted(rates[3:], reverse=True) and rates[-1] == pytest.approx(1 / 7)


# --- a full run --------------------------------------------------------------------------------

def test_train_writes_an_encoder_sentence_transformers_can_load(tiny_encoder_dir, shard_dir,
                                                               tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    monkeypatch.chdir(tmp_path)
    config = TrainConfig.from_params(params(steps=10, grad_accum_steps=2))
    out = tmp_path / "encoder"
    result = train(config, [shard_dir], tiny_encoder_dir, out, checkpoint_dir=tmp_path / "ck",
                   live_dir=tmp_path / "dvclive")
    s = result.summary
    assert s["mono_batches"] + s["cross_batches"] == 20 and s["fallback_batches"] == 0
    assert s["pairs_seen"] == 10 * 2 * 4
    assert not list((tmp_path / "ck").glob("*.pt"))  # checkpoints removed after the save

    base, trained = weights(tiny_encoder_dir), weights(out)
    emb = "embeddings.word_embeddings.weight"
    assert torch.equal(base[emb], trained[emb])  # frozen
    changed = [n for n in base if n != emb and not torch.equal(base[n], trained[n])]
    assert len(changed) > 10

    loss_tsv = (tmp_path / "dvclive/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert loss_tsv[0] == "step\tloss" and len(loss_tsv) == 11
    for curve in ("lr", "mono_batches", "cross_batches", "fallback_batches"):
        assert (tmp_path / f"dvclive/plots/metrics/train/{curve}.tsv").is_file()
    metrics = json.loads((tmp_path / "dvclive/metrics.json").read_text())
    assert metrics["train"]["steps"] == 10 and metrics["step"] == 9
    training = json.loads((out / "training.json").read_text())
    assert training["config"]["mix_ratio"] == 0.5 and training["summary"] == json.loads(
        json.dumps(s))
    assert s["source_ratios"] == {"qa": 1.0}
    card = (out / "README.md").read_text()  # the model card, from this run's files
    assert card.startswith("---\nbase_model: intfloat/multilingual-e5-small\n")
    assert "| steps | `10` |" in card and "| qa |" in card and "| 192 | 4 |" in card

    texts = ["What is the capital of France?", "Paris is the capital of France.", "apt-get"]
    model, tokenizer = load_encoder(out)
    ours = encode_texts(model, tokenizer, texts, prefix="passage: ", max_length=32,
                        batch_tokens=1000)
    st = SentenceTransformer(str(out), device="cpu")
    theirs = st.encode(["passage: " + t for t in texts], convert_to_numpy=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(st.encode_document(texts), theirs, atol=1e-6)


def test_bf16_autocast_on_cpu(tiny_encoder_dir, shard_dir, tmp_path):
    config = TrainConfig.from_params(params(steps=2, precision="bf16", freeze_word_embeddings=False))
    result = train(config, [shard_dir], tiny_encoder_dir, None)
    assert np.isfinite(result.summary["final_loss"])
    assert result.summary["trainable_parameters"] == result.summary["parameters"]
    assert result.summary["precision"] == "bf16"
    assert resolve_precision("auto", torch.device("cpu")) in ("bf16", "fp32")
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"


def test_second_source_is_one_more_shard_folder(tiny_encoder_dir, shard_dir, tmp_path):
    domain = shard_rows(n_pairs=24)
    domain = domain.set_column(domain.schema.get_field_index("source"), "source",
                               pa.array(["domain"] * len(domain)))
    write_shards(domain, tmp_path / "domain", rows_per_shard=100)
    config = TrainConfig.from_params(params(steps=2))
    with pytest.raises(PipelineError, match="source_ratios"):
        train(config, [shard_dir, tmp_path / "domain"], tiny_encoder_dir, None)
    result = train(config, [shard_dir, tmp_path / "domain"], tiny_encoder_dir, None,
                   source_ratios={"domain": 0.5, "qa": 0.5})
    assert result.summary["mono_batches"] + result.summary["cross_batches"] == 2


@pytest.mark.parametrize("variant", ["spacing", "case"])
def test_leakage_guard_stops_the_stage(tiny_encoder_dir, shard_dir, tmp_path, variant):
    """An evaluation text in the shards stops train, also when it differs only in spacing or in
    case (one definition of the same text: ``text.same_text_key``)."""
    forbidden = tmp_path / "questions.parquet"
    leaked = shard_rows()["query"][5].as_py()
    planted = "  " + leaked if variant == "spacing" else leaked.upper()
    assert planted != leaked
    pa.parquet.write_table(pa.table({"text": ["unrelated", planted]}), forbidden)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params()))
    done = subprocess.run(
        [sys.executable, str(REPO / "stages/train.py"), "--params", str(params_file),
         "--shards", str(shard_dir), "--base-encoder", str(tiny_encoder_dir),
         "--out", str(tmp_path / "enc"), "--forbidden", str(forbidden)],
        capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 2
    assert "2 rows in column 'query'" in done.stderr  # en-en, en-pt
    assert leaked in done.stderr  # the training text as stored
    assert not (tmp_path / "enc").exists()


def test_curves_are_live_while_training_and_removed_when_it_fails(tiny_encoder_dir, shard_dir,
                                                                   tmp_path, monkeypatch):
    """Each step's row is in dvclive/ before the next step runs; a run that raises leaves none."""
    import hybrid_retrieval.training as training

    monkeypatch.chdir(tmp_path)
    live, seen = tmp_path / "dvclive", []
    real_step = training._train_step

    def step_then_look(run, plans):
        loss_tsv = live / "plots/metrics/train/loss.tsv"
        seen.append(len(loss_tsv.read_text().splitlines()) - 1 if loss_tsv.exists() else 0)
        if len(seen) == 5 and fail:
            raise RuntimeError("planted failure at step 5")
        return real_step(run, plans)

    monkeypatch.setattr(training, "_train_step", step_then_look)
    fail = False
    train(TrainConfig.from_params(params(steps=4)), [shard_dir], tiny_encoder_dir, None,
          live_dir=live)
    assert seen == [0, 1, 2, 3]  # rows written before each next step: live, not at the end
    assert len((live / "plots/metrics/train/loss.tsv").read_text().splitlines()) == 5

    seen.clear()
    fail = True
    with pytest.raises(RuntimeError, match="planted failure"):
        train(TrainConfig.from_params(params(steps=8)), [shard_dir], tiny_encoder_dir, None,
              live_dir=live)
    assert seen == [0, 1, 2, 3, 4] and not live.exists()


def test_stage_draws_parallel_batches_only_when_parallel_ratio_is_set(tiny_encoder_dir, shard_dir,
                                                                      tmp_path):
    """A third source (NTREX ``parallel``) is one more shard folder: at parallel_ratio 0 it is not
    loaded (the run equals the run without it), above 0 it is drawn and labels its languages."""
    parallel = tmp_path / "ntrex"
    rows = shard_rows(n_pairs=24, langs=("en", "el", "vi")).to_pylist()
    write_shards(pa.Table.from_pylist([{**r, "source": "parallel", "pair_id": f"ntrex:{r['pair_id']}"}
                                       for r in rows if r["query_lang"] != r["passage_lang"]],
                                      schema=SHARD), parallel, rows_per_shard=1000)

    def run(ratio: float, name: str) -> dict:
        params_file = tmp_path / f"{name}.yaml"
        params_file.write_text(yaml.safe_dump({**params(steps=4), "parallel_ratio": ratio}))
        done = subprocess.run(
            [sys.executable, str(REPO / "stages/train.py"), "--params", str(params_file),
             "--shards", str(shard_dir), "--shards", str(parallel),
             "--base-encoder", str(tiny_encoder_dir), "--out", str(tmp_path / name),
             "--checkpoints", str(tmp_path / f"ck-{name}"),
             "--languages-out", str(tmp_path / f"{name}-languages.json")],
            capture_output=True, text=True, cwd=tmp_path, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads((tmp_path / f"{name}-languages.json").read_text())

    off, on = run(0.0, "off"), run(0.5, "on")
    assert off["source_ratios"] == {"qa": 1.0} and set(off["supervision"]) == {"en", "pt"}
    assert on["source_ratios"] == {"parallel": 0.5, "qa": 0.5}
    assert on["supervision"]["el"] == ["parallel"] and on["supervision"]["en"][0] == "qa"
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(params(steps=4)))
    subprocess.run([sys.executable, str(REPO / "stages/train.py"), "--params", str(plain),
                    "--shards", str(shard_dir), "--base-encoder", str(tiny_encoder_dir),
                    "--out", str(tmp_path / "plain"), "--checkpoints", str(tmp_path / "ck-p")],
                   capture_output=True, text=True, cwd=tmp_path, check=True)
    a, b = weights(tmp_path / "off"), weights(tmp_path / "plain")
    assert all(torch.equal(a[k], b[k]) for k in a)  # ratio 0 = the run without the folder


# --- resume after a kill -----------------------------------------------------------------------

def test_resume_after_sigkill_gives_the_uninterrupted_weights(tiny_encoder_dir, shard_dir,
                                                             tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = params(steps=150, checkpoint_every=25, keep_checkpoints=2)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(p))
    checkpoints = tmp_path / "ck_killed"
    cmd = [sys.executable, str(REPO / "stages/train.py"), "--params", str(params_file),
           "--shards", str(shard_dir), "--base-encoder", str(tiny_encoder_dir),
           "--out", str(tmp_path / "killed"), "--live", str(tmp_path / "live_killed"),
           "--checkpoints", str(checkpoints)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(checkpoints.glob("step-*.pt")) and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "training finished before it could be killed"
    assert not (tmp_path / "killed").exists()
    killed_at = sorted(checkpoints.glob("step-*.pt"))[-1]
    spare = tmp_path / "ck_spare"
    spare.mkdir()
    shutil.copy(killed_at, spare / killed_at.name)

    config = TrainConfig.from_params(p)
    resumed = train(config, [shard_dir], tiny_encoder_dir, tmp_path / "killed",
                    checkpoint_dir=checkpoints, live_dir=tmp_path / "live_killed")
    assert 0 < resumed.timing["resumed_from_step"] < 150
    assert killed_at.name == f"step-{resumed.timing['resumed_from_step']:07d}.pt"
    whole = train(config, [shard_dir], tiny_encoder_dir, tmp_path / "whole",
                  checkpoint_dir=tmp_path / "ck_whole", live_dir=tmp_path / "live_whole")
    assert resumed.summary == whole.summary
    a, b = weights(tmp_path / "killed"), weights(tmp_path / "whole")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The loss curve of the resumed run is complete and equal to the uninterrupted one.
    curve = "plots/metrics/train/loss.tsv"
    assert (tmp_path / "live_killed" / curve).read_text() == \
        (tmp_path / "live_whole" / curve).read_text()

    # A checkpoint of another configuration (or other inputs) is not resumed.
    other = TrainConfig.from_params({**p, "mix_ratio": 0.25, "train": {**p["train"], "steps": 30}})
    fresh = train(other, [shard_dir], tiny_encoder_dir, None, checkpoint_dir=spare)
    assert fresh.timing["resumed_from_step"] == 0


# --- torchrun ----------------------------------------------------------------------------------

RANK_SCRIPT = textwrap.dedent("""
    import os, sys, torch, yaml
    from hybrid_retrieval.training import TrainConfig, train
    tmp, shards, base = sys.argv[1:4]
    config = TrainConfig.from_params(yaml.safe_load(open(os.path.join(tmp, "params.yaml"))))
    result = train(config, [shards], base, os.path.join(tmp, "encoder"),
                   checkpoint_dir=os.path.join(tmp, "ck"), live_dir=os.path.join(tmp, "dvclive"))
    torch.save(result.model.state_dict(), os.path.join(tmp, f"rank{os.environ['RANK']}.pt"))
    torch.save(result.summary, os.path.join(tmp, f"summary{os.environ['RANK']}.pt"))
""")


def test_torchrun_two_ranks_end_with_identical_weights(tiny_encoder_dir, shard_dir, tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params(steps=6, checkpoint_every=3)))
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(tmp_path), str(shard_dir), str(tiny_encoder_dir)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    assert rank0.keys() == rank1.keys() and all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    base = weights(tiny_encoder_dir)
    assert not torch.equal(rank0["encoder.layer.0.attention.self.query.weight"],
                           base["encoder.layer.0.attention.self.query.weight"])
    summary = torch.load(tmp_path / "summary0.pt")
    assert summary["world_size"] == 2 and summary["pairs_seen"] == 6 * 4 * 2
    assert summary["mono_batches"] + summary["cross_batches"] == 12  # both ranks' batches
    saved = weights(tmp_path / "encoder")
    assert all(torch.equal(saved[k], rank0[k]) for k in saved)

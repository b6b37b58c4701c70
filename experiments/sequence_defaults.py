"""How SequenceAutoencoder's defaults were chosen, and how well they do.

  pip install -e '.[timeseries]'
  python -m experiments.sequence_defaults [--workdir=runs/sequence_defaults]
  python -m experiments.timeseries --defaults

The first command is the protocol. Its CANDIDATES (model, units,
initialiser) and ENCODINGS were fixed before it ran; everything else is
the class's training settings (TRAINING, the constructor's defaults). On
the training split of every classification set that the aeon wheel ships
(never a test split), each candidate is fitted on the inputs without
labels, and each encoding of its features is scored by the 5-fold
cross-validated accuracy of a logistic regression on the training labels
(`timeseries.fit_logistic`). The candidate and encoding with the best mean
over the sets, seed 0, became the class's defaults; a tie keeps the earlier
(smaller) one. Each run also records how every fit ended (epochs, best
epoch, why it stopped), which is how the schedule was checked. Writes
sequence_defaults.json / .md under --workdir; each set's row is saved under
<workdir>/sets/ and read back by a rerun with the same settings.

The second runs the defaults alone, `SequenceAutoencoder(random_state=s)`
for seeds 0, 1, 2, on every set, scored on the test splits, beside raw
values + logistic regression and 1-NN (`evaluate`; timeseries_defaults.json).
"""

import time

import numpy as np
from absl import flags

from experiments import results, timeseries
from lstm_unsup import cli
from lstm_unsup.sequence import SequenceAutoencoder

CANDIDATES = (  # fixed in advance, smallest first
  dict(variant="autoencoder", units=64, initializer="authors"),
  dict(variant="composite", units=64, initializer="authors"),
  dict(variant="autoencoder", units=128, initializer="authors"),
  dict(variant="composite", units=128, initializer="authors"),
  dict(variant="autoencoder", units=64, initializer="flax"),
  dict(variant="composite", units=64, initializer="flax"),
  dict(variant="autoencoder", units=128, initializer="flax"),
  dict(variant="composite", units=128, initializer="flax"),
)
ENCODINGS = ("h", "state", "mean")
RENDERER = "experiments.sequence_defaults"  # renders both of its JSON files
QUICK = dict(epochs=3)  # --quick: tiny fits (and units / 16), for the tests


def load_train(name: str):
  """A set's training split alone: sequences [T, F] and labels."""
  from aeon.datasets import load_classification as load  # noqa: PLC0415

  X, y = load(name, split="train")
  return [np.asarray(x, np.float32).T for x in X], np.asarray(y)


def candidate_name(candidate: dict) -> str:
  return "{variant} {units}, {initializer}".format(**candidate)


def protocol_row(name: str, tiny: dict) -> dict:
  """One set: each candidate's fit on the training inputs, the cross-
  validated training accuracy of each encoding, and how the fit ended."""
  x_train, y_train = load_train(name)
  fits = []
  for candidate in CANDIDATES:
    start = time.perf_counter()
    settings = {**candidate, **tiny, "verbose": 0}
    if tiny:
      settings["units"] //= 16
    ae = SequenceAutoencoder(random_state=0, **settings).fit(x_train)
    seconds = time.perf_counter() - start
    cv = {
      which: timeseries.fit_logistic(ae.encode(x_train, which=which), y_train)[
        1
      ]
      for which in ENCODINGS
    }
    fits.append(
      dict(
        candidate=candidate_name(settings),
        cv=cv,
        frame=ae.frame_,
        epochs=len(ae.history_),
        best_epoch=ae.best_epoch_,
        stopped_early=len(ae.history_) < ae.epochs,
        seconds=round(seconds, 1),
      )
    )
  T = max(len(x) for x in x_train)
  raw_cv = timeseries.fit_logistic(timeseries.resample(x_train, T), y_train)[1]
  return dict(data_set=name, train=len(x_train), fits=fits, raw_cv=raw_cv)


def choose(rows: list[dict]) -> dict:
  """Mean cross-validated accuracy over the sets of every (candidate,
  encoding), and the best; ties keep the earlier."""
  means = {}
  for i, fit in enumerate(rows[0]["fits"]):
    for which in ENCODINGS:
      means[f"{fit['candidate']}; {which}"] = float(
        np.mean([row["fits"][i]["cv"][which] for row in rows])
      )
  best = max(means, key=means.get)  # the first of equal maxima
  return dict(means=means, chosen=best)


def run_protocol(workdir: str, quick: bool, datasets: tuple[str, ...]) -> dict:
  start = time.perf_counter()
  names = datasets or (
    timeseries.QUICK_DATASETS if quick else timeseries.DATASETS
  )
  tiny = QUICK if quick else {}
  fingerprint = dict(
    candidates=[candidate_name(c) for c in CANDIDATES],
    encodings=list(ENCODINGS),
    training=_training_settings(),
    tiny=tiny,
  )
  rows = []
  for name in names:
    rows.append(
      timeseries.cached_row(
        workdir, name, fingerprint, lambda name=name: protocol_row(name, tiny)
      )
    )
    print(f"{name}: done", flush=True)
  result = dict(
    kind="protocol",
    rows=rows,
    **choose(rows),
    training=_training_settings(),
    quick=quick,
    seconds=time.perf_counter() - start,
  )
  results.write(workdir, "sequence_defaults", result, RENDERER)
  return result


def _class_defaults() -> dict:
  """The constructor's defaults, as JSON."""
  return {
    k: v
    for k, v in SequenceAutoencoder().get_params().items()
    if k != "verbose"
  }


def _training_settings() -> dict:
  """The defaults that every candidate keeps: all but what the candidates
  set and the encoding (each is scored on every fit)."""
  chosen = {*CANDIDATES[0], "encoding"}
  return {k: v for k, v in _class_defaults().items() if k not in chosen}


def evaluate_row(name: str, seeds: list[int], tiny: dict) -> dict:
  """One set: the defaults' features + logistic regression on the test
  split for each seed, beside raw values + LR and 1-NN."""
  x_train, y_train, x_test, y_test = timeseries.load_classification(name)
  accuracies, epochs, frames = [], [], []
  start = time.perf_counter()
  for seed in seeds:
    ae = SequenceAutoencoder(random_state=seed, verbose=0, **tiny).fit(x_train)
    accuracies.append(
      timeseries.logistic_accuracy(
        ae.transform(x_train), y_train, ae.transform(x_test), y_test
      )
    )
    epochs.append(len(ae.history_))
    frames.append(ae.frame_)
  lstm_seconds = time.perf_counter() - start
  raw = timeseries.raw_baselines(x_train, y_train, x_test, y_test)
  return dict(
    data_set=name,
    train=len(x_train),
    test=len(x_test),
    steps=timeseries.steps_text(x_train + x_test),
    features=x_train[0].shape[1],
    frame=frames[0],
    lstm_features=float(np.mean(accuracies)),
    lstm_features_sd=float(np.std(accuracies)),
    lstm_features_per_seed=accuracies,
    epochs_per_seed=epochs,
    lstm_seconds=round(lstm_seconds, 1),
    **raw,
  )


def evaluate(workdir, quick, num_seeds, datasets) -> dict:
  """`python -m experiments.timeseries --defaults`: every set, the class's
  defaults only, `num_seeds` seeds."""
  start = time.perf_counter()
  names = datasets or (
    timeseries.QUICK_DATASETS if quick else timeseries.DATASETS
  )
  tiny = {**QUICK, "units": 8} if quick else {}
  seeds = list(range(1 if quick else num_seeds))
  fingerprint = dict(class_defaults=_class_defaults(), tiny=tiny, seeds=seeds)
  rows = []
  for name in names:
    rows.append(
      timeseries.cached_row(
        f"{workdir}/defaults",
        name,
        fingerprint,
        lambda name=name: evaluate_row(name, seeds, tiny),
      )
    )
    print(f"{name}: {rows[-1]}", flush=True)
  result = dict(
    kind="defaults",
    classification=rows,
    seeds=seeds,
    class_defaults=_class_defaults(),
    quick=quick,
    seconds=time.perf_counter() - start,
    command=results.command_line("experiments.timeseries"),
  )
  results.write(workdir, "timeseries_defaults", result, RENDERER)
  return result


PROTOCOL_COLUMNS = {
  "candidate; encoding": lambda r: r["name"] + (" **(chosen)**" * r["chosen"]),
  "mean CV accuracy": lambda r: f"{r['mean']:.3f}",
}
DEFAULTS_COLUMNS = {
  "data set": lambda r: r["data_set"],
  "train / test": lambda r: f"{r['train']} / {r['test']}",
  "steps": lambda r: str(r["steps"]),
  "frame": lambda r: str(r["frame"]),
  "defaults + LR": lambda r: (
    f"{r['lstm_features']:.3f} ± {r['lstm_features_sd']:.3f}"
  ),
  "raw + LR": lambda r: f"{r['raw_logistic']:.3f}",
  "1-NN": lambda r: f"{r['nn1_euclidean']:.3f}",
  "epochs (per seed)": lambda r: ", ".join(map(str, r["epochs_per_seed"])),
  "LSTM s": lambda r: str(r["lstm_seconds"]),
}


def to_markdown(result: dict) -> str:
  """The protocol's table (mean cross-validated training accuracy of every
  candidate and encoding, with each set's) or the defaults' test table."""
  if result["kind"] == "defaults":
    seeds = len(result["seeds"])
    return (
      "Test accuracy; defaults + LR: `SequenceAutoencoder(random_state=s)` "
      f"and nothing else, mean ± standard deviation over {seeds} seeds. "
      f"{result['seconds'] / 60:.1f} minutes in all.\n\n"
      + timeseries.markdown(result["classification"], DEFAULTS_COLUMNS)
      + "\n"
    )
  sets = [row["data_set"] for row in result["rows"]]
  columns = dict(PROTOCOL_COLUMNS)
  for i, name in enumerate(sets):
    columns[name] = lambda r, i=i: f"{r['per_set'][i]:.3f}"
  table = []
  for key, mean in sorted(result["means"].items(), key=lambda kv: -kv[1]):
    candidate, which = key.split("; ")
    per_set = [
      next(f for f in row["fits"] if f["candidate"] == candidate)["cv"][which]
      for row in result["rows"]
    ]
    table.append(
      dict(name=key, mean=mean, per_set=per_set, chosen=key == result["chosen"])
    )
  raw = dict(
    name="raw values (no model)",
    mean=float(np.mean([row["raw_cv"] for row in result["rows"]])),
    per_set=[row["raw_cv"] for row in result["rows"]],
    chosen=False,
  )
  fits = [f for row in result["rows"] for f in row["fits"]]
  early = sum(f["stopped_early"] for f in fits)
  return (
    "Cross-validated accuracy of logistic regression on the training split "
    "of each set (5 folds; the test splits are not read), seed 0. "
    f"{early} of {len(fits)} fits stopped on their own before the epoch "
    f"cap. {result['seconds'] / 60:.1f} minutes in all.\n\n"
    + timeseries.markdown(table + [raw], columns)
    + "\n"
  )


def main(argv):
  del argv
  run_protocol(FLAGS.workdir, FLAGS.quick, tuple(FLAGS.datasets or ()))


FLAGS = flags.FLAGS

if __name__ == "__main__":
  flags.DEFINE_bool("quick", False, "Tiny models on one set (for tests).")
  flags.DEFINE_string("workdir", "runs/sequence_defaults", "Where results go.")
  flags.DEFINE_list(
    "datasets",
    [],
    f"A subset of the classification sets: {timeseries.DATASETS}.",
  )
  cli.run_main(main, checks=(ValueError,))

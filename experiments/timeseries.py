"""SequenceAutoencoder on real time-series benchmarks, offline through aeon.

  pip install -e '.[timeseries]'
  python -m experiments.timeseries [--quick] [--workdir=runs/timeseries]
  python -m experiments.timeseries --defaults   # the class's defaults alone

Classification (UCR/UEA sets that ship inside the aeon wheel): the composite
model learns features from the training inputs alone, without labels; a
logistic regression is trained on them and scored on the test split, beside
1-nearest-neighbour Euclidean and the same logistic regression on the raw
values, computed in the same run. Variable-length sets reach the model as
lists; the raw baselines see each series linearly resampled to the longest
training length.

Anomaly (UCR anomaly archive 135, InternalBleeding16: one labelled anomaly
in a heart-rate series): the autoencoder learns windows of the normal
training prefix; every window after it is scored by its reconstruction
error, and the top-scored window hits if it overlaps the labelled region
(and, by the archive's rule, if its centre lies within 100 points of it).
The baseline scores each window by its Euclidean distance to the nearest
training window.

The model reads "frames" as in the paper: k consecutive values per LSTM
step, k chosen so that no input is longer than MAX_STEPS steps. Settings are
chosen per data set and seed from training data alone: each of the fixed
CANDIDATES is fitted on the training inputs, each of its ENCODINGS_TRIED is
scored by the logistic regression's cross-validated accuracy on the training
split, and the best of them is the one scored on the test split. The test
labels choose nothing.

Writes timeseries.json and timeseries.md under --workdir and prints the
tables; each set's row is also saved under <workdir>/sets/ and read back on
a rerun with the same settings, and --datasets=A,B runs only some sets. The
default run (9 sets, 3 seeds, 3 candidates each) takes about 40 minutes on
2 CPU cores shared with a training job; --quick (seconds, for tests) trains
tiny models on one set with one seed.
"""

import json
import os
import time
import warnings

import numpy as np
from absl import flags
from sklearn.linear_model import LogisticRegressionCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from experiments import results, tables
from lstm_unsup import cli
from lstm_unsup.sequence import SequenceAutoencoder, data

DATASETS = (  # every classification set that the aeon 1.x wheel ships
  "GunPoint",
  "ItalyPowerDemand",
  "ArrowHead",
  "BasicMotions",  # 6 channels
  "JapaneseVowels",  # variable length, 12 channels
  "PickupGestureWiimoteZ",  # variable length, univariate
  "ACSF1",  # 1,460 steps, 10 classes
  "OSULeaf",  # 427 steps, 6 classes
  "UnitTest",  # aeon's 20 / 22 sequence slice of Chinatown
)
FEATURES = dict(  # shared by every candidate
  initializer="authors",  # the class's default when this table was made
  epochs=400,
  batch_size=16,
  learning_rate=3e-3,
  patience=50,
  verbose=0,
)
CANDIDATES = (  # fixed in advance; cross-validation on train picks one
  dict(variant="autoencoder", units=64),
  dict(variant="composite", units=64),
  dict(variant="composite", units=128),
)
ENCODINGS_TRIED = ("state", "mean")  # scored on each candidate's fit
ANOMALY = dict(
  variant="autoencoder",
  initializer="authors",
  units=64,
  epochs=300,
  batch_size=32,
  learning_rate=3e-3,
  patience=30,
  verbose=0,
)
MAX_STEPS = 32  # the longest input the LSTM reads, in frames
WINDOW, TRAIN_STRIDE, UCR_MARGIN = 64, 4, 100
QUICK = dict(epochs=3, units=8, verbose=0)
QUICK_DATASETS = ("ItalyPowerDemand",)


def load_classification(name: str):
  """Train and test sequences as lists of [T, F] arrays, with labels."""
  from aeon.datasets import load_classification as load  # noqa: PLC0415

  out = []
  for split in ("train", "test"):
    X, y = load(name, split=split)  # [N, F, T] or a list of [F, T]
    out += [[np.asarray(x, np.float32).T for x in X], np.asarray(y)]
  return out


def resample(seqs: list[np.ndarray], T: int) -> np.ndarray:
  """Each sequence linearly resampled to T steps, flattened: [N, T * F]."""
  out = []
  for x in seqs:
    at = np.linspace(0, len(x) - 1, T)
    cols = [
      np.interp(at, np.arange(len(x)), x[:, f]) for f in range(x.shape[1])
    ]
    out.append(np.stack(cols, axis=1).ravel())
  return np.stack(out)


def to_frames(seqs, k: int) -> list[np.ndarray]:
  """[T, F] sequences as [ceil(T / k), k * F] frames of k steps each (the
  last frame padded by repeating the last step): the class's own framing,
  done here by hand so that every candidate reads the same frames."""
  return data.to_frames(list(seqs), k)


def frame_size(seqs) -> int:
  """The k that keeps the longest sequence within MAX_STEPS frames."""
  return data.frame_size(np.array([len(x) for x in seqs]), MAX_STEPS)


def fit_logistic(f_train, y_train):
  """Standardise, then logistic regression with C by cross-validation.
  Returns the fitted pipeline and its cross-validated training accuracy
  (at the chosen C, averaged over the folds)."""
  folds = int(min(5, np.unique(y_train, return_counts=True)[1].min()))
  clf = make_pipeline(
    StandardScaler(), LogisticRegressionCV(Cs=10, cv=folds, max_iter=5000)
  )
  with warnings.catch_warnings():  # scikit-learn 1.9's notice of new fields
    warnings.simplefilter("ignore", FutureWarning)
    clf.fit(f_train, y_train)
  scores_FxC = next(iter(clf[-1].scores_.values()))
  return clf, float(scores_FxC.mean(0).max())


def logistic_accuracy(f_train, y_train, f_test, y_test) -> float:
  """Test accuracy of `fit_logistic` trained on (f_train, y_train)."""
  return float(fit_logistic(f_train, y_train)[0].score(f_test, y_test))


def candidate_name(settings: dict, encoding: str) -> str:
  return f"{settings['variant']} {settings['units']}, {encoding}"


def select_and_score(frames_train, y_train, frames_test, y_test, seed, base):
  """Fits every candidate on the training inputs, picks the (candidate,
  encoding) whose features give the best cross-validated training accuracy,
  and returns (its test accuracy, its name, that CV accuracy, epochs)."""
  best = None
  for candidate in CANDIDATES:
    settings = {**candidate, **base}  # `base` may shrink models (--quick)
    ae = SequenceAutoencoder(random_state=seed, **settings).fit(frames_train)
    for encoding in ENCODINGS_TRIED:
      f_train = ae.encode(frames_train, which=encoding)
      clf, cv = fit_logistic(f_train, y_train)
      if best is None or cv > best[0]:  # ties keep the earlier, simpler one
        best = (cv, candidate_name(settings, encoding), clf, ae, encoding)
  cv, name, clf, ae, encoding = best
  accuracy = float(clf.score(ae.encode(frames_test, which=encoding), y_test))
  return accuracy, name, cv, len(ae.history_)


def classify(name, data, settings, seeds) -> dict:
  """One table row: the features' accuracy for each seed (with the setting
  that training-split cross-validation chose), the baselines' accuracies,
  and wall times."""
  x_train, y_train, x_test, y_test = data
  start = time.perf_counter()
  k = frame_size(x_train)
  frames_train, frames_test = to_frames(x_train, k), to_frames(x_test, k)
  accuracies, chosen, cvs, epochs = [], [], [], []
  for seed in seeds:
    accuracy, choice, cv, epoch = select_and_score(
      frames_train, y_train, frames_test, y_test, seed, settings
    )
    accuracies.append(accuracy)
    chosen.append(choice)
    cvs.append(cv)
    epochs.append(epoch)
  lstm_seconds = time.perf_counter() - start
  return dict(
    data_set=name,
    train=len(x_train),
    test=len(x_test),
    steps=steps_text(x_train + x_test),
    features=x_train[0].shape[1],
    frame=k,
    lstm_features=float(np.mean(accuracies)),
    lstm_features_sd=float(np.std(accuracies)),
    lstm_features_per_seed=accuracies,
    chosen_per_seed=chosen,
    train_cv_per_seed=cvs,
    epochs_per_seed=epochs,
    lstm_seconds=round(lstm_seconds, 1),
    **raw_baselines(x_train, y_train, x_test, y_test),
  )


def steps_text(seqs) -> str | int:
  """The length of every sequence, or the range of their lengths."""
  lengths = sorted({len(x) for x in seqs})
  return f"{lengths[0]}-{lengths[-1]}" if len(lengths) > 1 else lengths[0]


def raw_baselines(x_train, y_train, x_test, y_test) -> dict:
  """Test accuracy of logistic regression and 1-NN (Euclidean) on the raw
  values, each sequence resampled to the longest training length."""
  start = time.perf_counter()
  T = max(len(x) for x in x_train)
  raw_train, raw_test = resample(x_train, T), resample(x_test, T)
  nn1 = KNeighborsClassifier(1).fit(raw_train, y_train)
  return dict(
    raw_logistic=logistic_accuracy(raw_train, y_train, raw_test, y_test),
    nn1_euclidean=float(nn1.score(raw_test, y_test)),
    baseline_seconds=round(time.perf_counter() - start, 1),
  )


def windows(series: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
  """Windows [N, WINDOW, 1] of a 1-D series, and their start indices."""
  starts = np.arange(0, len(series) - WINDOW + 1, stride)
  return series[starts[:, None] + np.arange(WINDOW)][..., None], starts


def hits(start: int, region: tuple[int, int]) -> tuple[bool, bool]:
  """(overlaps the labelled region, centre within UCR_MARGIN of it)."""
  lo, hi = region
  centre = start + WINDOW // 2
  overlap = start <= hi and start + WINDOW - 1 >= lo
  return overlap, lo - UCR_MARGIN <= centre <= hi + UCR_MARGIN


def nearest_distance(a_NxW: np.ndarray, b_MxW: np.ndarray) -> np.ndarray:
  """Euclidean distance of each row of a to its nearest row of b: [N]."""
  b2_1xM = np.square(b_MxW).sum(1)[None, :]
  out = []
  for chunk in np.array_split(a_NxW, max(1, len(a_NxW) // 512)):
    d2 = np.square(chunk).sum(1)[:, None] + b2_1xM - 2 * chunk @ b_MxW.T
    out.append(np.sqrt(np.maximum(d2, 0).min(1)))
  return np.concatenate(out)


def locate_anomaly(train, series, labels, settings, seeds) -> list[dict]:
  """Rows for the autoencoder (one top window per seed) and the nearest-
  window baseline: each scores every window after the training prefix."""
  region = tuple(int(i) for i in np.flatnonzero(labels)[[0, -1]])
  x_train, _ = windows(train, TRAIN_STRIDE)
  x_test, starts = windows(series[len(train) :], 1)
  starts = starts + len(train)

  def autoencoder(seed):
    k = frame_size([x_train[0]])
    frames_train, frames_test = (
      x.reshape(len(x), -1, k) for x in (x_train, x_test)
    )
    ae = SequenceAutoencoder(random_state=seed, **settings).fit(frames_train)
    return ae.score_samples(frames_test)

  def nearest_window(seed):
    del seed  # deterministic
    mean, std = train.mean(), train.std()
    every_train = windows(train, 1)[0]
    return nearest_distance(
      (x_test[..., 0] - mean) / std, (every_train[..., 0] - mean) / std
    )

  rows = []
  for method, score, method_seeds in [
    ("LSTM autoencoder: reconstruction error", autoencoder, seeds),
    ("distance to the nearest training window", nearest_window, [0]),
  ]:
    start = time.perf_counter()
    tops = [int(starts[np.argmax(score(seed))]) for seed in method_seeds]
    found = [hits(top, region) for top in tops]
    rows.append(
      dict(
        method=method,
        labelled=f"{region[0]}-{region[1]}",
        top_windows=[f"{top}-{top + WINDOW - 1}" for top in tops],
        hits=sum(f[0] for f in found),
        ucr_hits=sum(f[1] for f in found),
        tries=len(tops),
        seconds=round(time.perf_counter() - start, 1),
      )
    )
  return rows


def markdown(rows: list[dict], columns: dict) -> str:
  """A Markdown table: one column per header, its cell made by a function
  of the row."""
  cells = [[f(row) for f in columns.values()] for row in rows]
  return "\n".join(tables.markdown(list(columns), cells))


CLASSIFICATION_COLUMNS = {
  "data set": lambda r: r["data_set"],
  "train / test": lambda r: f"{r['train']} / {r['test']}",
  "steps": lambda r: str(r["steps"]),
  "features": lambda r: str(r["features"]),
  "frame": lambda r: str(r["frame"]),
  "features + LR": lambda r: (
    f"{r['lstm_features']:.3f} ± {r['lstm_features_sd']:.3f}"
  ),
  "raw + LR": lambda r: f"{r['raw_logistic']:.3f}",
  "1-NN": lambda r: f"{r['nn1_euclidean']:.3f}",
  "chosen by train CV (per seed)": lambda r: "; ".join(r["chosen_per_seed"]),
  "LSTM s": lambda r: str(r["lstm_seconds"]),
}
ANOMALY_COLUMNS = {
  "method": lambda r: r["method"],
  "labelled": lambda r: r["labelled"],
  "top-scored window": lambda r: ", ".join(sorted(set(r["top_windows"]))),
  "overlaps": lambda r: f"{r['hits']}/{r['tries']}",
  "within 100": lambda r: f"{r['ucr_hits']}/{r['tries']}",
  "s": lambda r: str(r["seconds"]),
}


def to_markdown(result: dict) -> str:
  """The classification table (test accuracy; LSTM features over seeds) and,
  when present, the anomaly table, as Markdown."""
  seeds = len(result["seeds"])
  text = (
    f"Test accuracy; features + LR: mean ± standard deviation over {seeds} "
    "seeds, each choosing its setting on the training split alone. "
    f"{result['seconds'] / 60:.1f} minutes in all.\n\n"
    + markdown(result["classification"], CLASSIFICATION_COLUMNS)
    + "\n"
  )
  if result.get("anomaly"):
    text += (
      "\nAnomaly: UCR 135 InternalBleeding16\n\n"
      + markdown(result["anomaly"], ANOMALY_COLUMNS)
      + "\n"
    )
  return text


def cached_row(workdir: str, name: str, fingerprint: dict, compute) -> dict:
  """A data set's row from `<workdir>/sets/<name>.json` when it was made
  with the same settings, else `compute()`, saved there: an interrupted run
  resumes at the first unfinished set."""
  path = os.path.join(workdir, "sets", f"{name}.json")
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    if saved.get("fingerprint") == fingerprint:
      print(f"{name}: read back from {path}", flush=True)
      return saved["row"]
  row = compute()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(dict(fingerprint=fingerprint, row=row), f, indent=1)
  return row


def run(
  workdir: str,
  quick: bool = False,
  num_seeds: int = 3,
  datasets: tuple[str, ...] = (),
) -> dict:
  """Runs every row (or those of `datasets`), prints the tables and writes
  them under `workdir`; rows finished by an earlier run are read back."""
  try:
    from aeon.datasets import load_kdd_tsad_135  # noqa: PLC0415
  except ImportError as e:
    raise ImportError(
      "experiments.timeseries needs aeon (1.6 ships every data set used): "
      "pip install -e '.[timeseries]'"
    ) from e

  start = time.perf_counter()
  unknown = sorted(set(datasets) - set(DATASETS))
  if unknown:
    raise ValueError(f"Unknown data sets {unknown}; choose from {DATASETS}.")
  names = tuple(datasets) or (QUICK_DATASETS if quick else DATASETS)
  tiny = QUICK if quick else {}
  seeds = list(range(1 if quick else num_seeds))
  settings = {**FEATURES, **tiny}
  fingerprint = json.loads(
    json.dumps(
      dict(
        features=settings,
        candidates=CANDIDATES,
        encodings=ENCODINGS_TRIED,
        max_steps=MAX_STEPS,
        seeds=seeds,
      )
    )
  )

  def compute(name):
    return lambda: classify(name, load_classification(name), settings, seeds)

  table = []
  for name in names:
    table.append(cached_row(workdir, name, fingerprint, compute(name)))
    print(f"{name}: {table[-1]}", flush=True)
  train, _ = load_kdd_tsad_135("train")
  series, labels = load_kdd_tsad_135("test")
  anomaly = locate_anomaly(train, series, labels, {**ANOMALY, **tiny}, seeds)
  result = dict(
    classification=table,
    anomaly=anomaly,
    seconds=time.perf_counter() - start,
    seeds=seeds,
    settings=dict(
      features=FEATURES,
      candidates=CANDIDATES,
      encodings=ENCODINGS_TRIED,
      anomaly=ANOMALY,
      quick=quick,
    ),
  )
  results.write(workdir, "timeseries", result, "experiments.timeseries")
  return result


def main(argv):
  del argv
  args = FLAGS.workdir, FLAGS.quick, FLAGS.seeds, tuple(FLAGS.datasets or ())
  if FLAGS.defaults:
    from experiments import sequence_defaults  # noqa: PLC0415

    sequence_defaults.evaluate(*args)
  else:
    run(*args)


FLAGS = flags.FLAGS

if __name__ == "__main__":
  flags.DEFINE_bool("quick", False, "Tiny models on one set (for tests).")
  flags.DEFINE_bool(
    "defaults",
    False,
    "SequenceAutoencoder's defaults alone on every set (no choosing), "
    "scored beside the raw baselines: timeseries_defaults.json.",
  )
  flags.DEFINE_string("workdir", "runs/timeseries", "Where results go.")
  flags.DEFINE_integer("seeds", 3, "Seeds 0, 1, ... of the LSTM models.")
  flags.DEFINE_list(
    "datasets", [], f"A subset of the classification sets: {DATASETS}."
  )
  cli.run_main(main, checks=(ValueError,))

"""Tests for lstm_unsup.optim.fused_adam: the compiled clipped-Adam kernel.

The kernel must give the XLA path's numbers (to float32 rounding: the two
compilers contract multiply-adds differently), update in place, and fall
back to XLA with a reason when it cannot be built. The cached library is
trusted only when its SHA-256 record matches and nobody else could have
written it; those tests load it in a fresh process (`_load` runs once per
process, and a damaged library used to kill the process).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lstm_unsup import input_pipeline, train, training_step
from lstm_unsup.configs import composite
from lstm_unsup.optim import fused_adam, optimizers


@pytest.fixture(scope="module")
def kernel():
  if fused_adam._compiler() is None:
    pytest.skip("no C++ compiler here: clipped Adam runs through XLA")
  # With a compiler the kernel must build: a broken build would otherwise
  # fall back to XLA silently and every test below would pass on XLA.
  assert fused_adam.unavailable_reason() is None
  assert fused_adam.available()


def _params(rng):
  return {
    "w": jnp.asarray(rng.normal(size=(300, 70)), jnp.float32),
    # More than three of the kernel's 65,536-element chunks, not a multiple.
    "pair": (
      jnp.asarray(rng.normal(size=(5,)), jnp.float32),
      jnp.asarray(rng.normal(size=(3 * 65536 + 17,)), jnp.float32),
    ),
    "scalar": jnp.asarray(rng.normal(), jnp.float32),
    "empty": jnp.zeros((0, 4), jnp.float32),
    "half": jnp.asarray(rng.normal(size=(3, 4)), jnp.bfloat16),  # XLA's
  }


def _close(a, b, rtol, atol):
  a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
  np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("clip_norm", [1.0, 1e4, None])
def test_native_apply_matches_xla_and_optax(kernel, clip_norm):
  rng = np.random.default_rng(0)
  params = _params(rng)
  schedule = optimizers.make_schedule(1e-2, warmup_steps=2)
  native = optimizers.clipped_adam(schedule, clip_norm, native=True)
  xla = optimizers.clipped_adam(schedule, clip_norm, native=False)
  reference = optax.adam(schedule)
  if clip_norm is not None:
    clip = optax.clip_by_global_norm(clip_norm)
    reference = optax.chain(clip, reference)
  p_n, s_n = params, native.init(params)
  p_x, s_x = params, xla.init(params)
  p_r, s_r = params, reference.init(params)
  apply_n, apply_x = jax.jit(native.apply), jax.jit(xla.apply)
  for _ in range(4):
    grads = jax.tree.map(
      lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params
    )
    p_n, s_n = apply_n(grads, s_n, p_n)
    p_x, s_x = apply_x(grads, s_x, p_x)
    updates, s_r = reference.update(grads, s_r, p_r)
    p_r = optax.apply_updates(p_r, updates)
  assert int(s_n.count) == int(s_x.count) == 4
  for a, b in zip(
    jax.tree.leaves((p_n, s_n.mu, s_n.nu)),
    jax.tree.leaves((p_x, s_x.mu, s_x.nu)),
    strict=True,
  ):
    assert a.dtype == b.dtype and a.shape == b.shape
    # Rounding differs where m = 0.1 g + 0.9 m cancels: atol scales with
    # the array's scale; a 1% error in an update (1e-4 here) is far larger.
    scale = float(np.abs(np.asarray(b, np.float32)).max(initial=0.0))
    _close(a, b, rtol=1e-6, atol=1e-6 * scale)
  for a, b in zip(jax.tree.leaves(p_n), jax.tree.leaves(p_r), strict=True):
    _close(a, b, rtol=1e-5, atol=1e-6 if a.dtype == jnp.float32 else 1e-2)


def test_native_apply_updates_parameters_in_place(kernel):
  rng = np.random.default_rng(1)
  params = {"w": jnp.asarray(rng.normal(size=(512, 256)), jnp.float32)}
  grads = {"w": jnp.asarray(rng.normal(size=(512, 256)), jnp.float32)}
  tx = optimizers.clipped_adam(1e-3, 1.0, native=True)
  # Donated in the order of the outputs, as the train step's state is, so
  # that JAX pairs each donated buffer with its own updated array.
  apply = jax.jit(lambda g, p, s: tx.apply(g, s, p), donate_argnums=(1, 2))
  compiled = apply.lower(grads, params, tx.init(params)).compile().as_text()
  assert fused_adam.TARGET in compiled and " copy(" not in compiled
  state = tx.init(params)
  before = [
    x.unsafe_buffer_pointer()
    for x in (params["w"], state.mu["w"], state.nu["w"])
  ]
  new_params, new_state = apply(grads, params, state)
  after = [
    x.unsafe_buffer_pointer()
    for x in (new_params["w"], new_state.mu["w"], new_state.nu["w"])
  ]
  assert after == before
  assert params["w"].is_deleted()
  assert not np.allclose(np.asarray(new_params["w"]), 0)


def test_train_step_with_kernel_matches_xla(kernel, tmp_path):
  config = composite.get_config("quick")
  config.data.data_dir = str(tmp_path / "data")
  config.data.source = "offline"
  digits = input_pipeline.load_train_digits(config)
  batches = [input_pipeline.train_batch(config, digits, i) for i in range(3)]
  mesh = training_step.make_mesh(1)
  results = {}
  for native in (True, False):
    config.optim.native = native
    model = train.models.build_model(config.model)
    state = training_step.create_train_state(config, model, *batches[0], mesh)
    step = training_step.make_train_step(config, model, mesh)
    for batch in batches:
      state, metrics = step(state, *training_step.shard_batch(mesh, *batch))
    results[native] = state, float(metrics["loss"])
  (s_n, loss_n), (s_x, loss_x) = results[True], results[False]
  assert int(s_n.step) == int(s_x.step) == 3
  assert int(s_n.opt_state.count) == 3
  np.testing.assert_allclose(loss_n, loss_x, rtol=1e-5)
  jax.tree.map(
    lambda a, b: _close(a, b, rtol=1e-4, atol=1e-6), s_n.params, s_x.params
  )


def test_build_is_cached_and_atomic(kernel, tmp_path, monkeypatch):
  monkeypatch.setenv("LSTM_UNSUP_CACHE_DIR", str(tmp_path))
  compiler = fused_adam._compiler()
  path = fused_adam.build(compiler)
  assert path.parent == tmp_path and path.name.endswith(".so")
  stamp = path.stat().st_mtime_ns
  assert fused_adam.build(compiler) == path  # found, not rebuilt
  assert path.stat().st_mtime_ns == stamp
  record = path.with_name(path.name + ".sha256")
  assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, record.name]


def test_failures_fall_back_with_a_reason(tmp_path, monkeypatch):
  load = fused_adam._load.__wrapped__  # uncached: register nothing twice
  monkeypatch.setenv("LSTM_UNSUP_CACHE_DIR", str(tmp_path))
  monkeypatch.setenv("LSTM_UNSUP_NATIVE_ADAM", "0")
  assert load() == "LSTM_UNSUP_NATIVE_ADAM=0"
  monkeypatch.delenv("LSTM_UNSUP_NATIVE_ADAM")
  monkeypatch.setenv("CXX", "false")  # a "compiler" that always fails
  reason = load()
  assert reason.startswith("building the kernel failed") and "false" in reason
  assert list(tmp_path.iterdir()) == []  # no half-written library left
  monkeypatch.setenv("CXX", "no-such-compiler-anywhere")
  assert load() == "no C++ compiler found (set $CXX)"


# ----------------------------------------------------------------------------
# The cached library: damaged, or writable by others.

# Run in a fresh process: reports why the kernel is off (or None), whether
# one clipped Adam step through it equals the XLA path's, and which cached
# libraries the process mapped into its memory.
_PROBE = """
import json
import jax, jax.numpy as jnp, numpy as np
from lstm_unsup.optim import fused_adam, optimizers
out = {"reason": fused_adam.unavailable_reason()}
if fused_adam.available():
  params = {"w": jnp.linspace(-1.0, 1.0, 1000, dtype=jnp.float32)}
  grads = {"w": jnp.cos(jnp.arange(1000, dtype=jnp.float32))}
  new = {}
  for native in (True, False):
    tx = optimizers.clipped_adam(1e-2, 1.0, native=native)
    apply = jax.jit(tx.apply)
    text = apply.lower(grads, tx.init(params), params).as_text()
    out[f"kernel_in_{native}"] = fused_adam.TARGET in text
    new[native] = np.asarray(apply(grads, tx.init(params), params)[0]["w"])
  out["max_difference"] = float(np.abs(new[True] - new[False]).max())
  out["moved"] = float(np.abs(new[False] - np.asarray(params["w"])).min())
with open("/proc/self/maps") as f:
  out["mapped"] = sorted({ln.split()[-1] for ln in f if "fused_adam-" in ln})
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory):
  """A cache folder holding one built kernel, to copy (one compile). Built
  under a umask that would leave new files group-writable."""
  if fused_adam._compiler() is None:
    pytest.skip("no C++ compiler here: clipped Adam runs through XLA")
  folder = tmp_path_factory.mktemp("built") / "cache"
  umask = os.umask(0o002)
  try:
    with pytest.MonkeyPatch.context() as patch:
      patch.setenv("LSTM_UNSUP_CACHE_DIR", str(folder))
      library = fused_adam.build(fused_adam._compiler())
  finally:
    os.umask(umask)
  return folder, library.name


def _private_copy(built_cache, tmp_path) -> Path:
  """The built cache copied under tmp_path (modes kept): its library path."""
  folder, name = built_cache
  shutil.copytree(folder, tmp_path / "cache")
  return tmp_path / "cache" / name


def _probe(cache: Path) -> tuple[dict, str]:
  """(_PROBE's report, stderr) of a fresh process using the cache `cache`."""
  env = {**os.environ, "LSTM_UNSUP_CACHE_DIR": str(cache)}
  env.pop("LSTM_UNSUP_NATIVE_ADAM", None)
  done = subprocess.run(
    [sys.executable, "-c", _PROBE],
    env=env,
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-3000:]}"
  return json.loads(done.stdout.splitlines()[-1]), done.stderr


def _truncate(library: Path) -> None:
  os.truncate(library, 4096)  # was a bus error (SIGBUS) at load


def _remove_record(library: Path) -> None:
  os.remove(library.with_name(library.name + ".sha256"))


def _overwrite(library: Path) -> None:
  """Same size, other bytes: only the hash sees it."""
  data = bytearray(library.read_bytes())
  data[len(data) // 2] ^= 0xFF
  library.write_bytes(bytes(data))


@pytest.mark.parametrize(
  "damage, says",
  [
    (_truncate, "does not match its checksum"),
    (_overwrite, "does not match its checksum"),
    (_remove_record, "has no checksum beside it"),
  ],
)
def test_a_damaged_or_unrecorded_library_is_rebuilt_with_a_warning(
  built_cache, tmp_path, damage, says
):
  library = _private_copy(built_cache, tmp_path)
  damage(library)
  report, stderr = _probe(library.parent)
  assert report["reason"] is None
  assert report["kernel_in_True"] and not report["kernel_in_False"]
  # The kernel's step is the XLA step's (float32 rounding aside) and moved
  # every parameter by far more than that.
  assert report["max_difference"] <= 1e-6 and report["moved"] > 1e-4
  assert report["mapped"] == [str(library)]
  warning = next(ln for ln in stderr.splitlines() if says in ln)
  assert str(library) in warning and "rebuilding it" in warning
  assert library.read_bytes() == (built_cache[0] / library.name).read_bytes()
  assert (built_cache[0] / (library.name + ".sha256")).read_text() == (
    library.with_name(library.name + ".sha256").read_text()
  )


def _chmod_library(library: Path) -> Path:
  library.chmod(0o666)
  return library


def _chmod_record(library: Path) -> Path:
  record = library.with_name(library.name + ".sha256")
  record.chmod(0o666)
  return record


def _chmod_folder(library: Path) -> Path:
  library.parent.chmod(0o777)
  return library.parent


def _give_away(library: Path) -> Path:
  if os.geteuid() != 0:
    pytest.skip("only root can give a file to another user")
  os.chown(library, 65534, -1)  # nobody
  return library


@pytest.mark.parametrize(
  "expose, fix",
  [
    (_chmod_library, "chmod go-w"),
    (_chmod_record, "chmod go-w"),
    (_chmod_folder, "chmod go-w"),
    (_give_away, "LSTM_UNSUP_CACHE_DIR"),
  ],
)
def test_a_library_others_could_write_is_not_loaded(
  built_cache, tmp_path, expose, fix
):
  library = _private_copy(built_cache, tmp_path)
  before = library.read_bytes()
  exposed = expose(library)
  report, stderr = _probe(library.parent)
  reason = report["reason"]
  assert reason is not None and str(exposed) in reason
  assert fix in reason and "LSTM_UNSUP_CACHE_DIR" in reason
  if fix == "chmod go-w":
    assert f"chmod go-w {exposed}" in reason
  assert report["mapped"] == []  # nothing of it ran in the process
  assert f"clipped Adam runs through XLA: {reason}" in stderr
  assert library.read_bytes() == before  # refused, not rebuilt


def test_the_cache_it_creates_is_private(built_cache):
  folder, name = built_cache
  assert folder.stat().st_mode & 0o777 == 0o700
  for path in (folder / name, folder / (name + ".sha256")):
    assert path.stat().st_mode & 0o022 == 0, f"{path}: {path.stat().st_mode:o}"
    assert path.stat().st_uid == os.geteuid()

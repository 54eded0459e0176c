"""Checks of a composed genlab-train config, run before anything is built.

Every bad value raises ``ConfigError`` naming the dotted key, the value and what is allowed,
e.g. ``model.n_critic=0 is invalid: must be an integer >= 1``. The rules are generic: a rule
matches a key by name in a section, so a new model, net or objective gets them for free:

- ``optimizer``: every node whose ``_target_`` is a ``torch.optim`` optimizer, wherever it is,
  and every node named ``*optimizer`` (per-network overrides such as ``model.d_optimizer``);
- ``model``: any depth under ``model`` (the module, its nets, an objective written inline),
  schedulers and optimizers excluded;
- ``loss``: any depth under ``loss`` (the GAN objective ``loss.objective.*`` and the authors'
  settings ``loss.n_critic``, ``loss.lr``, ``loss.betas``, ``loss.d_batch_norm``);
- ``data`` and ``trainer``: the top-level keys of those nodes.

A key whose value is a plain reference to another key (``num_classes: ${data.num_classes}``,
``objective: ${loss.objective}``) is checked where the value is defined; a reference to a key
that no chosen config sets is named with the fix (a GAN model with no ``loss=``). Optimizer
keys must be arguments of the optimizer (``optim=rmsprop`` takes no ``betas``). An objective
that needs an autoencoder critic (BEGAN) needs a model whose ``autoencoder`` is set (CycleGAN
has none). Choices made
here: BEGAN's ``gamma`` must be in (0, 1] (the ratio of the two losses it balances);
``clip_value`` and ``grad_clip_val`` are null (no clipping) or > 0; ``trainer.max_epochs`` is
null, -1 (no limit) or >= 1, as 0 trains nothing.

Nets and data sources declare the images they take without reading configs: class attributes
``supported_image_sizes`` / ``supported_channels`` (tuples), or, when that depends on their own
arguments, a static ``check_image_shape(image_shape, **kwargs)`` raising ValueError.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf

from genlab.config import CONFIG_DIR
from genlab.errors import UserError

# ckpt_path values that Lightning resolves itself (checkpoints it finds in the run directory)
LIGHTNING_CKPT_NAMES = ("last", "best", "hpc", "registry")


class ConfigError(UserError, ValueError):
    """A config value genlab cannot use; the message names the key, the value and what is
    allowed."""


@dataclass(frozen=True)
class Allowed:
    """A predicate on a config value with the words that say what it accepts."""

    check: Callable[[Any], bool]
    text: str


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def integer(low: int) -> Allowed:
    return Allowed(lambda v: _is_int(v) and v >= low, f"an integer >= {low}")


def number(low: float, high: float | None = None, *, open_low: bool = False) -> Allowed:
    """A finite number >= low (> low with open_low), and < high if high is given."""
    if high is None:
        return Allowed(
            lambda v: _is_number(v) and (v > low if open_low else v >= low),
            f"a finite number {'>' if open_low else '>='} {low}",
        )
    return Allowed(
        lambda v: _is_number(v) and (low < v if open_low else low <= v) and v < high,
        f"a number in {'(' if open_low else '['}{low}, {high})",
    )


def one_of(*choices: Any) -> Allowed:
    return Allowed(
        lambda v: not isinstance(v, bool) and v in choices,
        f"one of {', '.join(map(str, choices))}",
    )


def optional(allowed: Allowed) -> Allowed:
    return Allowed(lambda v: v is None or allowed.check(v), f"null or {allowed.text}")


def pair(allowed: Allowed) -> Allowed:
    return Allowed(
        lambda v: isinstance(v, list | tuple) and len(v) == 2 and all(map(allowed.check, v)),
        f"a pair [a, b], each {allowed.text}",
    )


BOOLEAN = Allowed(lambda v: isinstance(v, bool), "true or false")
UNIT = number(0, 1)  # [0, 1)
POSITIVE = number(0, open_low=True)
NON_NEGATIVE = number(0)
BEGAN_GAMMA = Allowed(lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]")
MAX_EPOCHS = Allowed(
    lambda v: v is None or (_is_int(v) and (v == -1 or v >= 1)),
    "null, -1 (no limit) or an integer >= 1",
)
MAX_STEPS = Allowed(
    lambda v: _is_int(v) and (v == -1 or v >= 1), "-1 (no limit) or an integer >= 1"
)


@dataclass(frozen=True)
class Rule:
    """In ``section``, a key named ``key`` must be ``allowed``."""

    section: str  # "optimizer", "model", "loss", "data" or "trainer" (module docstring)
    key: str
    allowed: Allowed


# a GAN objective's own settings, under loss.objective (or an objective written in a model)
OBJECTIVE_RULES = {
    "penalty_weight": NON_NEGATIVE,  # the WGAN-GP / DRAGAN lambda
    "lambda_k": NON_NEGATIVE,
    "clip_value": optional(POSITIVE),
    "gamma": BEGAN_GAMMA,
}

RULES: tuple[Rule, ...] = (
    Rule("optimizer", "lr", POSITIVE),
    Rule("optimizer", "betas", pair(UNIT)),
    Rule("optimizer", "weight_decay", NON_NEGATIVE),
    Rule("optimizer", "momentum", UNIT),
    Rule("optimizer", "alpha", UNIT),
    Rule("optimizer", "eps", POSITIVE),
    Rule("model", "latent_dim", integer(1)),
    Rule("model", "n_critic", integer(1)),
    Rule("model", "num_classes", integer(0)),
    Rule("model", "ema_decay", optional(UNIT)),
    Rule("model", "max_g_steps", optional(integer(1))),
    Rule("model", "latent_prior", one_of("normal", "uniform")),
    Rule("model", "ema_bn_samples", integer(1)),
    Rule("model", "sample_mode", one_of("auto", "mean", "draw")),  # VAE
    Rule("model", "grad_clip_val", optional(POSITIVE)),
    Rule("model", "beta", NON_NEGATIVE),
    *(
        Rule(section, key, allowed)
        for section in ("model", "loss")
        for key, allowed in OBJECTIVE_RULES.items()
    ),
    Rule("loss", "n_critic", integer(1)),
    Rule("loss", "lr", POSITIVE),
    Rule("loss", "betas", pair(UNIT)),
    Rule("loss", "d_batch_norm", BOOLEAN),
    Rule("data", "batch_size", integer(1)),
    Rule("data", "eval_batch_size", optional(integer(1))),
    Rule("data", "channels", one_of(1, 3)),
    Rule("data", "image_size", integer(8)),
    Rule("data", "load_size", integer(8)),
    Rule("data", "num_classes", integer(0)),
    Rule("data", "val_size", integer(0)),
    Rule("data", "num_workers", integer(0)),
    Rule("trainer", "max_epochs", MAX_EPOCHS),
    Rule("trainer", "max_steps", MAX_STEPS),
)


def _show(value: Any) -> str:
    """A value as it is written on the command line: null, true, 'text', 0.5, [0.5, 2.0]."""
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value)
    return str(value)


def invalid(key: str, value: Any, allowed: str) -> str:
    """The one-line message for a bad value."""
    return f"{key}={_show(value)} is invalid: must be {allowed}"


_REFERENCE = re.compile(r"^\$\{[\w.]+\}$")  # ${data.num_classes}, not ${oc.env:...}
_ABSENT = object()


def _is_reference(node: DictConfig, key: str) -> bool:
    raw = node._get_node(key)._value()
    return isinstance(raw, str) and bool(_REFERENCE.match(raw))


def _walk(node: DictConfig, path: str) -> Iterator[tuple[str, DictConfig]]:
    """(dotted path, node) for ``node`` and every dict below it, not following references."""
    yield path, node
    for key in node:
        if OmegaConf.is_missing(node, key) or OmegaConf.is_interpolation(node, key):
            continue
        child = node[key]
        if isinstance(child, DictConfig):
            yield from _walk(child, f"{path}.{key}")
        elif isinstance(child, ListConfig):
            for i, item in enumerate(child):
                if isinstance(item, DictConfig):
                    yield from _walk(item, f"{path}.{key}[{i}]")


def _nodes(cfg: DictConfig) -> Iterator[tuple[str, DictConfig]]:
    """(dotted path, node) for every dict node of ``cfg`` below the root."""
    for key in cfg:
        if not OmegaConf.is_missing(cfg, key) and not OmegaConf.is_interpolation(cfg, key):
            child = cfg[key]
            if isinstance(child, DictConfig):
                yield from _walk(child, str(key))


def _target(node: DictConfig) -> str | None:
    target = node.get("_target_")
    return target if isinstance(target, str) else None


def _section(path: str, node: DictConfig) -> str | None:
    target = _target(node) or ""
    if target.startswith("torch.optim."):
        return None if target.startswith("torch.optim.lr_scheduler.") else "optimizer"
    if path.rsplit(".", 1)[-1].endswith("optimizer"):
        return "optimizer"
    top = path.split(".", 1)[0]
    if top in ("model", "loss"):
        return top
    return top if path in ("data", "trainer") else None


def _value_errors(cfg: DictConfig) -> list[str]:
    errors = []
    for path, node in _nodes(cfg):
        section = _section(path, node)
        for rule in RULES:
            if rule.section != section or rule.key not in node or _is_reference(node, rule.key):
                continue
            value = node[rule.key]
            if isinstance(value, ListConfig):
                value = OmegaConf.to_container(value)
            if not rule.allowed.check(value):
                errors.append(invalid(f"{path}.{rule.key}", value, rule.allowed.text))
    return errors


def _group_options(group: str) -> list[str]:
    """The options of config group ``group`` (empty if there is no such group)."""
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


def _dangling_reference_errors(cfg: DictConfig) -> list[str]:
    """References (``${loss.objective}``) to keys that no chosen config sets; one message per
    missing config group (a GAN model with no ``loss=``) naming its options."""
    dangling: dict[str, list[str]] = {}  # the missing top-level key -> keys that read it
    for path, node in [("", cfg), *_nodes(cfg)]:
        for key in node:
            raw = node._get_node(key)._value()
            if not (isinstance(raw, str) and _REFERENCE.match(raw)) or raw.startswith("${."):
                continue
            target = raw[2:-1]
            if OmegaConf.select(cfg, target, default=_ABSENT) is _ABSENT:
                reader = f"{path}{'.' if path else ''}{key}={raw}"
                dangling.setdefault(target.split(".", 1)[0], []).append(reader)
    errors = []
    for top, readers in dangling.items():
        others = f" (and {len(readers) - 1} more keys)" if len(readers) > 1 else ""
        options = _group_options(top)
        if options and top not in cfg:
            errors.append(
                f"{readers[0]}{others} reads the {top} config group, but no {top} option is "
                f"chosen{_choice(readers[0].split('.', 1)[0])}: add {top}=<name> to the command "
                f"line, with <name> one of {', '.join(options)}"
            )
        else:
            errors.extend(
                f"{reader} refers to a key that no chosen config sets: set it on the command "
                "line or choose a config group option that sets it"
                for reader in readers
            )
    return errors


def _missing_errors(cfg: DictConfig) -> list[str]:
    """Mandatory values (``???``) nobody set."""
    nodes = [("", cfg), *_nodes(cfg)]
    return [
        f"{path}{'.' if path else ''}{key}=??? is missing: set it on the command line or choose "
        "a config group option that sets it"
        for path, node in nodes
        for key in node
        if OmegaConf.is_missing(node, key)
    ]


def _locate(target: str) -> Any:
    """The object a ``_target_`` names (``package.module.Name``), as Hydra finds it."""
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is not None and module_name.startswith(error.name):
                continue  # no such module: try a shorter prefix
            raise
        for attr in parts[split:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"no module in {target!r}")


def unimportable_targets(node: DictConfig, path: str) -> list[str]:
    """``<key>._target_='<name>' cannot be imported (<why>)`` for every ``_target_`` at or below
    ``node`` (whose dotted path is ``path``) that cannot be imported."""
    problems = []
    for key, child in _walk(node, path):
        target = _target(child)
        if target is None:
            continue
        try:
            _locate(target)
        except (ImportError, AttributeError) as error:
            problems.append(f"{key}._target_={_show(target)} cannot be imported ({error})")
    return problems


def _target_errors(cfg: DictConfig) -> list[str]:
    """Unknown ``_target_`` s, and nets (or sources) that cannot take data.channels x
    data.image_size."""
    data = cfg.get("data") or {}
    channels, size = data.get("channels"), data.get("image_size")
    shape_ok = one_of(1, 3).check(channels) and integer(8).check(size)
    errors = []
    for path, node in _nodes(cfg):
        target = _target(node)
        if target is None:
            continue
        try:
            obj = _locate(target)
        except (ImportError, AttributeError) as error:
            errors.append(invalid(f"{path}._target_", target, f"an importable name ({error})"))
            continue
        if not shape_ok or not path.startswith(("model", "data")):
            continue
        where = f"is invalid for {path} ({target})"
        sizes = getattr(obj, "supported_image_sizes", None)
        if sizes is not None and size not in sizes:
            sizes_text = ", ".join(map(str, sizes))
            errors.append(f"data.image_size={size} {where}: must be one of {sizes_text}")
        allowed_channels = getattr(obj, "supported_channels", None)
        if allowed_channels is not None and channels not in allowed_channels:
            channels_text = ", ".join(map(str, allowed_channels))
            errors.append(f"data.channels={channels} {where}: must be one of {channels_text}")
        check = getattr(obj, "check_image_shape", None)
        if callable(check):
            kwargs = {k: v for k, v in node.items() if not k.startswith("_")}
            try:
                check((channels, size, size), **kwargs)
            except ValueError as reason:
                errors.append(f"data.image_size={size} {where}: {reason}")
    return errors


def _labelled_data_options() -> list[str]:
    """The options of the ``data`` config group whose data sets have class labels (the domain
    labels of unpaired data are not classes a conditional model could use)."""
    folder = Path(CONFIG_DIR) / "data"

    def num_classes(name: str) -> int:
        node = OmegaConf.load(folder / f"{name}.yaml")
        if "num_classes" in node:
            return node.num_classes
        parents = [d for d in node.get("defaults", []) if isinstance(d, str) and d != "_self_"]
        return num_classes(parents[0]) if parents else 0

    single_domain = set(_data_options_with_layout("images"))
    return sorted(
        p.stem for p in folder.glob("*.yaml") if num_classes(p.stem) > 0 and p.stem in single_domain
    )


def _choice(group: str) -> str:
    """`` (<group>=<option>)`` when run by Hydra, else an empty string."""
    if not HydraConfig.initialized():
        return ""
    choice = HydraConfig.get().runtime.choices.get(group)
    return f" ({group}={choice})" if choice else ""


def _conditional_errors(cfg: DictConfig) -> list[str]:
    """A conditional model needs labelled data (data.num_classes >= 2)."""
    data_classes = (cfg.get("data") or {}).get("num_classes", 0)
    errors = []
    for path, node in _walk(cfg.get("model") or DictConfig({}), "model"):
        if node.get("conditional") is True and not (_is_int(data_classes) and data_classes >= 2):
            errors.append(
                f"{path}.conditional=true needs labelled data, but data.num_classes="
                f"{_show(data_classes)}{_choice('data')}: choose a labelled data set "
                f"(data={' | '.join(_labelled_data_options())}) or an unconditional model"
            )
    return errors


def _needs_autoencoder(objective: Any) -> bool:
    """Whether the objective node's class needs an autoencoder critic (False if unimportable:
    reported by _target_errors)."""
    target = _target(objective) if isinstance(objective, DictConfig) else None
    try:
        return bool(target) and getattr(_locate(target), "needs_autoencoder", False)
    except (ImportError, AttributeError):
        return False


def _critic_errors(cfg: DictConfig) -> list[str]:
    """An objective that needs an autoencoder critic (BEGAN) needs a model that has one."""
    model = cfg.get("model")
    if not isinstance(model, DictConfig) or "objective" not in model:
        return []
    objective = OmegaConf.select(model, "objective", throw_on_missing=False, default=None)
    if not _needs_autoencoder(objective) or model.get("autoencoder") is not None:
        return []
    folder = Path(CONFIG_DIR) / "loss"
    others = [
        name
        for name in _group_options("loss")
        if not _needs_autoencoder(OmegaConf.load(folder / f"{name}.yaml").objective)
    ]
    return [
        f"model.objective._target_={objective._target_}{_choice('loss')} needs an autoencoder "
        f"critic, but model.autoencoder=null{_choice('model')}: choose another objective "
        f"(loss={' | '.join(others)}) or set model.autoencoder to an autoencoder network"
    ]


def _optimizer_argument_errors(cfg: DictConfig) -> list[str]:
    """Keys of a ``torch.optim`` optimizer node that the optimizer does not take (e.g. the
    GAN presets' Adam betas under optim=rmsprop)."""
    errors = []
    for path, node in _nodes(cfg):
        target = _target(node) or ""
        if _section(path, node) != "optimizer" or not target.startswith("torch.optim."):
            continue
        try:
            accepted = inspect.signature(_locate(target)).parameters
        except (ImportError, AttributeError, TypeError, ValueError):
            continue  # an unknown target is reported by _target_errors
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
            continue
        for key in node:
            if not str(key).startswith("_") and key not in accepted:
                errors.append(
                    f"{path}.{key}={_show(node[key])} is invalid: {target} takes no {key}; "
                    f"remove it with '~{path}.{key}' on the command line"
                )
    return errors


def _batch_layout(node: Any) -> str | None:
    """The batch layout a data module yields or a model trains on: ``batch_layout`` of the
    class its ``_target_`` names (``images``, the default: (x, y); ``unpaired``: (a, b) images
    of two domains); None when there is no importable target."""
    target = _target(node) if isinstance(node, DictConfig) else None
    if not target:
        return None
    try:
        return getattr(_locate(target), "batch_layout", "images")
    except (ImportError, AttributeError):
        return None  # reported by _target_errors


LAYOUT_WORDS = {"images": "single-domain (x, y)", "unpaired": "unpaired two-domain (a, b)"}


def _data_option_target(name: str) -> str | None:
    """The ``_target_`` of a ``data`` option, following its defaults to the option it extends."""
    node = OmegaConf.load(Path(CONFIG_DIR) / "data" / f"{name}.yaml")
    if "_target_" in node:
        return node._target_
    parents = [d for d in node.get("defaults", []) if isinstance(d, str) and d != "_self_"]
    return _data_option_target(parents[0]) if parents else None


def _data_options_with_layout(layout: str) -> list[str]:
    """The options of the ``data`` group whose data module yields ``layout`` batches."""
    names = sorted(p.stem for p in (Path(CONFIG_DIR) / "data").glob("*.yaml"))
    return [
        name
        for name in names
        if _batch_layout(DictConfig({"_target_": _data_option_target(name)})) == layout
    ]


def _layout_errors(cfg: DictConfig) -> list[str]:
    """The model must train on the kind of batches the data module yields."""
    data_layout, model_layout = _batch_layout(cfg.get("data")), _batch_layout(cfg.get("model"))
    if data_layout is None or model_layout is None or data_layout == model_layout:
        return []
    options = " | ".join(_data_options_with_layout(model_layout))
    wants, gives = (LAYOUT_WORDS.get(x, x) for x in (model_layout, data_layout))
    return [
        f"model._target_={cfg.model._target_} trains on {wants} batches, but "
        f"data._target_={cfg.data._target_}{_choice('data')} yields {gives} batches: choose "
        f"data={options} for this model, or a model for this data"
    ]


def _checkpoint_errors(cfg: DictConfig) -> list[str]:
    ckpt = cfg.get("ckpt_path")
    if ckpt is None or ckpt in LIGHTNING_CKPT_NAMES:
        return []
    if not isinstance(ckpt, str) or not Path(ckpt).is_file():
        return [
            f"ckpt_path={_show(ckpt)} is invalid: no such checkpoint file; pass the path of a "
            "checkpoint, e.g. ckpt_path=<run_dir>/checkpoints/last.ckpt, or ckpt_path=null"
        ]
    return []


def _optimized_metric_errors(cfg: DictConfig) -> list[str]:
    """An ``eval/*`` optimized_metric needs the sample_quality callback to compute it, a
    ``best/eval/*`` one evaluations during training."""
    metric = cfg.get("optimized_metric")
    quality = (cfg.get("callbacks") or {}).get("sample_quality") or {}
    during = bool(quality.get("every_n_steps") or quality.get("every_n_epochs"))
    if (
        isinstance(metric, str)
        and metric.startswith("eval/")
        and not (quality.get("at_end") or during)
    ):
        return [
            f"optimized_metric={metric} comes from the sample_quality callback, which is off: set "
            "callbacks.sample_quality.at_end=true (or every_n_epochs / every_n_steps > 0), or "
            "optimized_metric=null"
        ]
    if isinstance(metric, str) and metric.startswith("best/eval/") and not during:
        return [
            f"optimized_metric={metric} is the best of the evaluations during training, which "
            "are off: set callbacks.sample_quality.every_n_epochs (or every_n_steps) > 0, or "
            f"optimized_metric={metric.removeprefix('best/')}"
        ]
    return []


THREADS = Allowed(lambda v: v == "auto" or integer(1).check(v), "auto or an integer >= 1")


def _threads_errors(cfg: DictConfig) -> list[str]:
    threads = cfg.get("threads", "auto")
    return [] if THREADS.check(threads) else [invalid("threads", threads, THREADS.text)]


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every bad value of ``cfg`` (nothing is instantiated)."""
    errors = _dangling_reference_errors(cfg)
    if errors:  # the checks below resolve values, which these would break
        raise ConfigError(_message(errors))
    errors = [
        *_missing_errors(cfg),
        *_value_errors(cfg),
        *_optimizer_argument_errors(cfg),
        *_target_errors(cfg),
        *_conditional_errors(cfg),
        *_critic_errors(cfg),
        *_layout_errors(cfg),
        *_checkpoint_errors(cfg),
        *_optimized_metric_errors(cfg),
        *_threads_errors(cfg),
    ]
    if errors:
        raise ConfigError(_message(errors))


def _message(errors: list[str]) -> str:
    if len(errors) == 1:
        return errors[0]
    return f"{len(errors)} config values are invalid:\n  " + "\n  ".join(errors)

"""Where models come from: `package.module:factory`, `timm:NAME` or `path/to/file.py:callable`, and
the constructor arguments each submodule was built with (they name the parameters of the blocks).

Arguments are recorded by wrapping ``nn.Module.__init__`` while the factory runs: every module
calls it (through ``super().__init__()``) from its own ``__init__``, whose frame still holds the
arguments. Only the outermost ``__init__`` of an object counts (a subclass's, not its bases').
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archdsl.diagnostics import ArchError, Diagnostic, Span

if TYPE_CHECKING:
    from torch import nn

ConstructorArgs = dict[int, dict[str, Any]]  # id(module) → its constructor's arguments


def _fail(spec: str, message: str, hint: str) -> ArchError:
    return ArchError(Diagnostic("E1205", message, Span.unknown(f"<{spec}>"), hint))


def resolve(spec: str) -> tuple[Callable[[], Any], str]:
    """The zero-argument callable that builds the model, and a name for it."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise _fail(spec, f"`{spec}` is not MODULE:FACTORY",
                    "write e.g. torchvision.models:resnet50, timm:efficientnet_b0 or my_model.py:build")
    if target == "timm":
        def build_timm() -> Any:
            import timm

            return timm.create_model(attr, pretrained=False)

        return build_timm, attr
    try:
        if target.endswith(".py") or os.sep in target or "/" in target:
            if not os.path.exists(target):
                raise _fail(spec, f"no file `{target}`", "give the path of a Python file that defines the model")
            name = f"archdsl_import_{abs(hash(os.path.abspath(target)))}"
            loader_spec = importlib.util.spec_from_file_location(name, target)
            if loader_spec is None or loader_spec.loader is None:
                raise _fail(spec, f"cannot load `{target}` as Python", "give a .py file")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ArchError:
        raise
    except Exception as exc:  # the user's module failed to import: say so, with its own message
        raise _fail(spec, f"importing `{target}` failed: {type(exc).__name__}: {str(exc)[:300]}",
                    "check that the module imports in plain Python") from None
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise _fail(spec, f"`{target}` has no callable `{attr}`", "name a function or class that builds the model")
    return fn, attr


def build(fn: Callable[[], Any], spec: str) -> tuple[nn.Module, ConstructorArgs]:
    """Call the factory with constructor arguments recorded; the model is put in eval mode."""
    import warnings

    from torch import nn

    try:
        with warnings.catch_warnings():  # the model's own warnings (deprecations, init notes) are not ours
            warnings.simplefilter("ignore")
            model, args = record_constructor_args(fn)
    except Exception as exc:
        raise _fail(spec, f"building the model failed: {type(exc).__name__}: {str(exc)[:300]}",
                    "the factory is called without arguments") from None
    if not isinstance(model, nn.Module):
        raise _fail(spec, f"`{spec}` returned {type(model).__name__}, not an nn.Module", "name a model factory")
    return model.eval(), args


def record_constructor_args(fn: Callable[[], Any]) -> tuple[Any, ConstructorArgs]:
    """Run `fn()`, recording the arguments of every nn.Module constructed meanwhile."""
    from torch import nn

    original = nn.Module.__init__
    records: dict[int, tuple[Any, dict[str, Any]]] = {}

    def recording_init(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        frame = sys._getframe(1)
        outer = None
        while frame is not None and frame.f_code.co_name == "__init__" and frame.f_code.co_varnames \
                and frame.f_locals.get(frame.f_code.co_varnames[0]) is self:
            outer, frame = frame, frame.f_back  # type: ignore[assignment]
        if outer is not None and id(self) not in records:
            records[id(self)] = (self, _arguments(outer))
        original(self, *args, **kwargs)

    nn.Module.__init__ = recording_init  # type: ignore[method-assign]
    try:
        model = fn()
    finally:
        nn.Module.__init__ = original  # type: ignore[method-assign]
    return model, {k: v for k, (_, v) in records.items()}


def _arguments(frame: Any) -> dict[str, Any]:
    code = frame.f_code
    n = code.co_argcount + code.co_kwonlyargcount
    names = list(code.co_varnames[1:n])
    out = {k: frame.f_locals[k] for k in names if k in frame.f_locals}
    extra = n + (1 if code.co_flags & inspect.CO_VARARGS else 0)
    if code.co_flags & inspect.CO_VARKEYWORDS and extra < len(code.co_varnames):
        kw = frame.f_locals.get(code.co_varnames[extra])
        if isinstance(kw, dict):
            out.update({k: v for k, v in kw.items() if isinstance(k, str) and k not in out})
    return out

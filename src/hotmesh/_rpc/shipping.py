"""Code shipping: a function defined in a console session or snippet travels as
its source plus the globals it uses, and is rebuilt on the target node (no I/O
beyond reading source through linecache)."""

from __future__ import annotations

import importlib
import linecache
import sys
import textwrap
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from hotmesh._errors import EncodeError, ShippingError
from hotmesh._hashes import sha1
from hotmesh._rpc.namespaces import Namespace, new_namespace
from hotmesh._wire import codec

if TYPE_CHECKING:
    import ast

FORMAT = 1
HELPER_MARK = "_hotmesh_helper"  # set by the console's helpers; the target has its own
_GLOBAL_OPS = {"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL", "STORE_NAME"}
# Modules whose functions are never looked up by import path: their code
# lives only in a console session or a script's main module.
_UNIMPORTABLE = {"__main__", "__console__", "__shipped__"}
_LAMBDA_ENTRY = "__hotmesh_entry__"


def pack_function(fn: Callable[..., Any]) -> dict[str, Any]:
    """Describe ``fn`` so that ``load_function`` can rebuild it on another node.

    A function importable by its module and qualified name travels as that
    reference. Any other plain function (defined in a console session, a
    snippet run with ``hotmesh run``, a script's ``__main__`` or a closure)
    travels as its source without decorators (a lambda as ``name = (lambda
    ...)``, found by its line and parameters), together with what its code
    uses from its globals and closure: modules (as import names), importable
    functions and classes (as references), other functions of the same
    namespace (by source, recursively), console helpers (left to the target's
    namespace) and values the wire can carry.

    Raises:
        ShippingError: the source cannot be found (a builtin, code typed in a
            plain ``python`` prompt) or is ambiguous (two like lambdas on one
            line), a global or closure value cannot travel, or the source does
            not compile on its own (e.g. it uses ``nonlocal``). Nothing was sent.
    """
    ref = _reference(fn)
    if ref is not None:
        return {"v": FORMAT, "name": getattr(fn, "__qualname__", ref), "ref": ref}
    if not isinstance(fn, types.FunctionType):
        raise ShippingError(
            f"{fn!r} cannot be shipped: only plain functions (def) or importable callables travel"
        )
    packer = _Packer(fn.__globals__)
    entry = _LAMBDA_ENTRY if fn.__code__.co_name == "<lambda>" else fn.__code__.co_name
    packer.add_function(fn, entry)
    return {
        "v": FORMAT,
        "name": fn.__name__,
        "entry": entry,
        "sources": packer.sources,
        "modules": packer.modules,
        "refs": packer.refs,
        "values": packer.values,
        "helpers": sorted(packer.helpers),
    }


def load_function(packed: dict[str, Any]) -> Callable[..., Any]:
    """Rebuild a function packed by ``pack_function`` on this node.

    Shipped sources run in a fresh namespace from the namespace factory (the
    console's session helpers once a console server runs here). The sources
    are registered in linecache so tracebacks show their lines.

    Raises:
        ShippingError: the description is malformed, a module or reference
            does not import here, or a helper it needs is missing.
    """
    if not isinstance(packed, dict) or packed.get("v") != FORMAT:
        raise ShippingError(f"unsupported shipped-function format: {_head(packed)}")
    try:
        if "ref" in packed:
            return cast("Callable[..., Any]", _resolve(packed["ref"]))
        namespace = new_namespace()
        for name, module in packed.get("modules", {}).items():
            namespace[name] = importlib.import_module(module)
        for name, ref in packed.get("refs", {}).items():
            namespace[name] = _resolve(ref)
        namespace.update(packed.get("values", {}))
        missing = [name for name in packed.get("helpers", ()) if name not in namespace]
        if missing:
            raise ShippingError(f"console helpers {missing} are not available on this node")
        for item in packed["sources"]:
            source, line = item["source"], int(item["line"])
            filename = _register(item["filename"], source, line)
            # Blank lines in front keep the line numbers of the caller's cell.
            padded = "\n" * (line - 1) + source
            exec(compile(padded, filename, "exec", dont_inherit=True), namespace)
        fn = namespace[packed["entry"]]
    except ShippingError:
        raise
    except (ImportError, KeyError, TypeError, ValueError, SyntaxError) as exc:
        raise ShippingError(
            f"cannot rebuild shipped function {packed.get('name')!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(fn):
        raise ShippingError(f"shipped entry {packed.get('entry')!r} is not callable")
    return cast("Callable[..., Any]", fn)


class _Packer:
    """Collects the sources and globals a shipped function needs."""

    def __init__(self, globals_: Namespace) -> None:
        self.globals = globals_
        self.sources: list[dict[str, Any]] = []
        self.modules: dict[str, str] = {}
        self.refs: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.helpers: set[str] = set()
        self._seen: set[int] = set()

    def add_function(self, fn: types.FunctionType, bind_as: str) -> None:
        """Ship ``fn`` by source, bound to ``bind_as`` in the target's namespace."""
        if id(fn) in self._seen:
            return
        self._seen.add(id(fn))
        if fn.__globals__ is not self.globals:
            raise ShippingError(
                f"{fn.__qualname__} comes from another namespace ({fn.__module__}) and is not "
                "importable there: define it in the same console session or snippet, or in a module"
            )
        source, line, extra_names = _source_of(fn, bind_as)
        names = _global_names(fn.__code__) | extra_names
        for name in sorted(names):
            if name in self.globals:
                self._add_global(name, self.globals[name], fn)
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
            try:
                value = cell.cell_contents
            except ValueError:
                raise ShippingError(
                    f"{fn.__qualname__} closes over {name!r}, which has no value yet"
                ) from None
            if name in self.globals and self.globals[name] is not value:
                raise ShippingError(
                    f"{fn.__qualname__} closes over {name!r}, which shadows a global of the same "
                    "name: rename one of them to ship it"
                )
            self._add_global(name, value, fn)
        self.sources.append({"filename": fn.__code__.co_filename, "line": line, "source": source})

    def _add_global(self, name: str, value: Any, user: types.FunctionType) -> None:
        if _is_helper(value):
            self.helpers.add(name)
        elif isinstance(value, types.ModuleType):
            self.modules[name] = value.__name__
        elif (ref := _reference(value)) is not None:
            self.refs[name] = ref
        elif isinstance(value, types.FunctionType):
            self.add_function(value, name)
        elif isinstance(value, type) or callable(value):
            raise ShippingError(
                f"{user.__qualname__} uses {name!r} ({type(value).__name__} {value!r}), which is "
                "neither importable nor a plain function: define it in a module so the target "
                "can import it"
            )
        else:
            try:
                codec.pack(value)
            except EncodeError as exc:
                raise ShippingError(
                    f"{user.__qualname__} uses {name!r}, a {type(value).__name__} that cannot "
                    f"travel: {exc}"
                ) from exc
            self.values[name] = value


def _source_of(fn: types.FunctionType, bind_as: str) -> tuple[str, int, set[str]]:
    """Source that binds ``fn`` to ``bind_as`` (its def without decorators, or
    ``name = (lambda ...)``), its first line, and the names its defaults and
    annotations use (evaluated when the def runs)."""
    import ast  # only to ship a function: a node's start need not load it (nor dis)

    code = fn.__code__
    lines = linecache.getlines(code.co_filename, fn.__globals__)
    if not lines or code.co_firstlineno > len(lines):
        raise ShippingError(
            f"the source of {fn.__qualname__} ({code.co_filename}) cannot be found: define it in a "
            "hotmesh console, a snippet run with `hotmesh run`, or a module file"
        )
    if code.co_name == "<lambda>":
        source, node = _lambda_source(fn, lines, bind_as)
        line = code.co_firstlineno
        arguments = node.args
    else:
        source, fdef, line = _def_source(fn, lines)
        if bind_as != code.co_name:
            source += f"{bind_as} = {code.co_name}\n"
        arguments = fdef.args
    try:
        compile(source, code.co_filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise ShippingError(
            f"{fn.__qualname__} does not compile on its own ({exc.msg}): a nested function "
            "using nonlocal cannot be shipped"
        ) from exc
    parts: list[ast.AST | None] = [*arguments.defaults, *arguments.kw_defaults]
    every_arg = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    every_arg += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    parts += [a.annotation for a in every_arg]
    if code.co_name != "<lambda>":
        parts.append(fdef.returns)
    extra = {
        n.id
        for part in parts
        if part is not None
        for n in ast.walk(part)
        if isinstance(n, ast.Name)
    }
    return source, line, extra


def _def_source(
    fn: types.FunctionType, lines: list[str]
) -> tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, int]:
    import ast
    import inspect  # only to ship a function: a node's start need not load it

    code = fn.__code__
    try:
        block = inspect.getblock(lines[code.co_firstlineno - 1 :])
        text = textwrap.dedent("".join(block))
        tree = ast.parse(text)
    except (SyntaxError, IndentationError, inspect.EndOfBlock) as exc:
        raise ShippingError(f"the source of {fn.__qualname__} cannot be isolated: {exc}") from exc
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name != code.co_name:
        raise ShippingError(f"the source found for {fn.__qualname__} is not its def statement")
    source = "".join(text.splitlines(keepends=True)[node.lineno - 1 :])
    return source, node, code.co_firstlineno + node.lineno - 1


def _lambda_source(
    fn: types.FunctionType, lines: list[str], bind_as: str
) -> tuple[str, ast.Lambda]:
    """``bind_as = (lambda ...)`` from the one lambda on the function's first line."""
    import ast

    code = fn.__code__
    text = "".join(lines)
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise ShippingError(f"the source of {fn.__qualname__} cannot be parsed: {exc}") from exc
    params = list(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    found = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Lambda)
        and node.lineno == code.co_firstlineno
        and [a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)]
        == params
    ]
    segment = ast.get_source_segment(text, found[0]) if len(found) == 1 else None
    if segment is None:
        raise ShippingError(
            f"line {code.co_firstlineno} of {code.co_filename} holds several lambdas like this "
            "one: define the function with def to ship it"
        )
    return f"{bind_as} = ({segment})\n", found[0]


def _global_names(code: types.CodeType) -> set[str]:
    """Names ``code`` (and the code nested in it) looks up or binds as globals."""
    import dis

    names: set[str] = set()
    for instruction in dis.get_instructions(code):
        if instruction.opname in _GLOBAL_OPS:
            names.add(str(instruction.argval))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _reference(obj: Any) -> str | None:
    """``"module:qualname"`` when importing ``module`` and following ``qualname`` gives ``obj``."""
    try:
        module = obj.__module__
        qualname = obj.__qualname__
    except AttributeError:
        return None
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    if module in _UNIMPORTABLE or module not in sys.modules:
        return None
    target: Any = sys.modules[module]
    for part in qualname.split("."):
        target = getattr(target, part, None)
    return f"{module}:{qualname}" if target is obj else None


def _resolve(ref: str) -> Any:
    module, _, qualname = ref.partition(":")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def _is_helper(value: Any) -> bool:
    try:
        return isinstance(getattr(value, HELPER_MARK, None), str)
    except Exception:
        return False


def _register(origin: str, source: str, line: int) -> str:
    """Register shipped source in linecache under a name keyed by its content."""
    digest = sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
    filename = f"<shipped {origin} {digest}>"
    if filename not in linecache.cache:
        lines = ["\n"] * (line - 1) + source.splitlines(keepends=True)
        linecache.cache[filename] = (len(source), None, lines, filename)
    return filename


def _head(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."

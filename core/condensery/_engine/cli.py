"""The ``condensery`` command. User mistakes end with one line on stderr and exit code 2."""

from __future__ import annotations

import errno
import json
import os
import sys

import click

from ..api.errors import CondenseryError, UserError
from ..api.progress import set_quiet
from .plugins import get_registry
from .recipe_commands import recipes
from .registry import KINDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="condensery")
def cli() -> None:
    """Dataset distillation: distil, evaluate fairly, compare side by side."""


@cli.command()
@click.argument("recipe")
@click.option("-o", "--output", "output", default=None, help="run directory (default runs/<name>)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a recipe value, e.g. synthesizer.ipc=10")
@click.option("--quiet", is_flag=True, help="no progress bars or status lines")
@click.option("--force", is_flag=True, help="run again even if the run directory is finished (or write into a "
              "folder another command wrote)")
@click.option("--processes", type=click.IntRange(min=1), default=None,
              help="split the run over N local processes (gloo on the CPU, loopback only); "
                   "what `torchrun --nproc_per_node N -m condensery run` or `accelerate launch --multi_gpu` start")
@click.option("--no-eval", "no_eval", is_flag=True,
              help="stop after the set (synthesis-only or timing runs); rerun without it to evaluate")
def run(recipe: str, output: str | None, overrides: tuple[str, ...], quiet: bool, force: bool,
        processes: int | None, no_eval: bool) -> None:
    """Run RECIPE (a .yaml file, or a shipped name: `condensery recipes`): distil, save the set, evaluate it
    next to the random real subset."""
    from .launch import in_launched_process, launch, world_size
    from .recipe import load_recipe

    set_quiet(quiet)
    registry = get_registry()
    plan = load_recipe(recipe, list(overrides), registry)  # a bad recipe fails once, here
    from .runner import is_finished  # torch: only once the recipe is good
    from .runner import run as run_plan
    launching = processes and processes > 1 and not in_launched_process()
    if launching and not is_finished(plan, registry, output, force):  # a finished run needs no processes
        args = ["run", recipe, *(["-o", output] if output else []),
                *(a for o in overrides for a in ("--set", o)), *(["--quiet"] if quiet else []),
                *(["--force"] if force else []), *(["--no-eval"] if no_eval else []), "--processes", str(processes)]
        code = launch(args, processes)
        if code:
            sys.exit(code)  # the failing rank already printed its one-line error
        return
    if processes and in_launched_process() and processes != world_size():
        raise UserError(f"--processes {processes} disagrees with the launcher's WORLD_SIZE={world_size()}; drop --processes")
    metrics = run_plan(plan, registry, output, force, evaluate=not no_eval)
    if not quiet and os.environ.get("RANK", "0") == "0":
        judged = f"{len(metrics['results'])} results" if plan.evaluators else "no evaluators: the set only"
        click.echo(f"wrote {output or 'runs/' + plan.name} ({judged})")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print a JSON list of objects")
@click.option("--check", is_flag=True, help="also import every component (slower): a reference that fails, or declared "
              "options that are not the component's own, is listed as broken")
def plugins(as_json: bool, check: bool) -> None:
    """List every component: kind, name, providing distribution and version."""
    from .registry import BrokenPlugin, PluginLoadError

    registry = get_registry()
    if check:
        for c in registry.all():
            try:
                c.check()  # imports it; its declared options must be its own Options
            except PluginLoadError as exc:
                registry.broken.append(BrokenPlugin(f"{c.plugin} ({c.kind} {c.name})", c.distribution, c.version, str(exc)))
    rows = [
        {"kind": c.kind, "name": c.name, "distribution": c.distribution, "version": c.version, "plugin": c.plugin}
        for c in registry.all()
    ]
    rows += [
        {"kind": "broken", "name": b.plugin, "distribution": b.distribution, "version": b.version, "error": b.error}
        for b in registry.broken
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(r["name"]) for r in rows), default=4)
    for kind in (*KINDS, "broken"):
        for r in (r for r in rows if r["kind"] == kind):
            tail = f"  ERROR: {r['error']}" if kind == "broken" else ""
            click.echo(f"{kind:<12} {r['name']:<{width}}  {r['distribution']} {r['version']}{tail}")


def _option_pairs(items: tuple[str, ...]) -> dict[str, object]:
    """``KEY=VALUE`` strings -> a dict, values parsed as YAML scalars (``3``, ``true``, ``krr``); text that is
    no YAML stays text, as with ``--set``."""
    from .strict_yaml import NotYAML, RefusedYAML, parse_yaml

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--option '{item}' must look like KEY=VALUE, e.g. --option refine_steps=20")
        try:
            parsed: object = parse_yaml(value)
        except NotYAML:
            parsed = value
        except RefusedYAML as exc:
            raise UserError(f"--option '{key}': the value {exc}") from None
        out[key.strip().replace("-", "_")] = parsed
    return out


@cli.command()
@click.argument("generator_dir", type=click.Path())
@click.option("--ipc", type=click.IntRange(min=1), required=True, help="images per class, any size")
@click.option("-o", "--output", "output", required=True, help="the .safetensors SyntheticSet to write")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="same seed, same set (draw of initial images, extension and refinement streams)")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="an option of the generator's type, e.g. --option refine_steps=20 (a typo lists the valid ones)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override the stored recipe, e.g. data.root=/elsewhere/cifar10")
@click.option("--force", is_flag=True, help="replace an OUTPUT (or its .png) that condensery did not write as a set")
def generate(generator_dir: str, ipc: int, output: str, seed: int, options: tuple[str, ...],
             overrides: tuple[str, ...], force: bool) -> None:
    """Write a SyntheticSet of IPC images per class from the generator in GENERATOR_DIR (any registered type)."""
    from .generate import generate_file

    path = generate_file(generator_dir, ipc, output, seed, _option_pairs(options), list(overrides),
                         force=force)
    click.echo(f"wrote {path}")


cli.add_command(recipes)

#: the core's own commands (plugins add theirs in build_cli)
_CORE_COMMANDS = tuple(cli.commands)


class _CommandsOf:
    """What one plugin's ``register_commands`` sees: the group, with clashes refused by name."""

    def __init__(self, group: click.Group, plugin: str, owners: dict[str, str]) -> None:
        self._group, self._plugin, self._owners = group, plugin, owners

    def add_command(self, command: click.Command, name: str | None = None) -> None:
        name = name or command.name
        owner = self._owners.get(name)
        if owner is not None and owner != self._plugin:
            raise UserError(
                f"command '{name}' is added by two plugins, '{owner}' and '{self._plugin}'; uninstall one, or skip "
                f"one with CONDENSERY_BLOCK_PLUGINS={self._plugin}"
            )
        self._owners[name] = self._plugin
        self._group.add_command(command, name)

    def command(self, *args, **kwargs):
        def decorator(f):
            cmd = click.command(*args, **kwargs)(f)
            self.add_command(cmd)
            return cmd
        return decorator

    def __getattr__(self, name: str):
        return getattr(self._group, name)


def build_cli() -> click.Group:
    """The command group with every plugin's ``register_commands`` applied, one plugin at a time."""
    registry = get_registry()
    owners = dict.fromkeys(_CORE_COMMANDS, "condensery")
    for impl in registry.pm.hook.register_commands.get_hookimpls():
        impl.function(cli=_CommandsOf(cli, impl.plugin_name, owners))
    return cli


#: errno -> what the user can do about it
_OS_FIXES = {
    errno.ENOSPC: "free some space there, or write elsewhere (-o); rerunning resumes from the last checkpoint",
    errno.EDQUOT: "free some of your quota, or write elsewhere (-o); rerunning resumes from the last checkpoint",
    errno.EACCES: "make it writable (or readable) for you, or use another path",
    errno.EPERM: "make it writable (or readable) for you, or use another path",
    errno.EROFS: "the file system is read-only: write elsewhere (-o)",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: use another path",
    errno.EISDIR: "it is a folder: give a file path",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.EMFILE: "raise the open-file limit (ulimit -n)",
}


def environment_problem(exc: OSError) -> str:
    """One line for an ``OSError``: what failed, on which path, and the fix."""
    paths = " -> ".join(f"'{p}'" for p in (exc.filename, exc.filename2) if p)
    what = exc.strerror or type(exc).__name__
    fix = _OS_FIXES.get(exc.errno or -1, "check the path and the disk")
    return f"{what}{': ' + paths if paths else ''}; {fix}"


#: what ``str.splitlines`` breaks at, each shown as its escape
_LINE_BREAKS = {ord(c): c.encode("unicode_escape").decode() for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


def _one_line(message: str) -> str:
    """``message`` on one line: an error quotes what the user typed (a key, a value, a path),
    which may hold a line break, and one line is what every error promises."""
    return message.translate(_LINE_BREAKS)


def _hint(exc: click.ClickException) -> str:
    """Where an unknown ``generate`` flag belongs: each generator type declares its own options."""
    command = exc.ctx.command.name if getattr(exc, "ctx", None) is not None else None
    if isinstance(exc, click.NoSuchOption) and command == "generate" and exc.option_name.startswith("--"):
        key = exc.option_name[2:].replace("-", "_")
        return f"; a generator type's own options go through --option {key}=VALUE"
    return ""


def main(argv: list[str] | None = None) -> None:
    """Entry point: turn known errors into one line and an exit code, never a traceback.

    A bug (any other exception) is one line naming the plugin (and distribution) whose code
    raised it, exit 1; ``--debug`` anywhere on the command line or ``CONDENSERY_DEBUG=1``
    shows the traceback instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("CONDENSERY_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    try:
        group = build_cli()
        group.main(args=argv, prog_name="condensery", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:  # how click reports Ctrl-C outside standalone mode
        click.echo("error: interrupted; rerun the same command to resume from the last checkpoint", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {_one_line(exc.format_message() + _hint(exc))} (see `condensery --help`)", err=True)
        sys.exit(2)
    except CondenseryError as exc:
        click.echo(f"error: {_one_line(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted; rerun the same command to resume from the last checkpoint", err=True)
        sys.exit(130)
    except OSError as exc:  # the disk, a path or a permission: the user's environment, not a bug
        click.echo(f"error: {_one_line(environment_problem(exc))}", err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - a bug, reported with who to tell
        if debug:
            raise
        culprit = get_registry().blame(exc)
        who = (f"plugin '{culprit[0]}' (distribution {culprit[1]} {culprit[2]})".rstrip() if culprit
               else "condensery itself")
        text = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(f"error: a bug in {who}: {type(exc).__name__}: {text}; report it with the traceback from "
                   "rerunning with --debug (or CONDENSERY_DEBUG=1)", err=True)
        sys.exit(1)


__all__ = ["cli", "main", "UserError"]

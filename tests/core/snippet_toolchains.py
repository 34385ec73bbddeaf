"""Building and running snippets in each language with the real toolchains, several snippets per build.

`build(language, snippets, workdir)` checks and compiles a batch of snippets (named by identifiers) the way
the language needs: Python's `compile`, `node --check`, `bash -n`, one `tsc --strict` run for all TypeScript
files, one `go build` for all Go programs (and `gofmt -l`), one `javac` run for all Java classes, `mcs` per C#
file; Ruby and PHP are checked by running them. Each snippet comes back as a `Program` to run, or as the
build's complaint about it. `missing(language)` says which tool is not installed, and how to get it.

Compiling a batch at once keeps the added test time modest (one tsc or JVM start instead of one per snippet).
For Java the batch renames each `public class Main` to `Main_<name>` (one javac run cannot hold two classes of
one name); `test_java_snippet_runs_as_a_single_source_file` runs one snippet as shipped, with `java Main.java`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TS_TOOLS = REPO_ROOT / "tests" / "snippet_tools" / "node_modules"
TSC = TS_TOOLS / ".bin" / "tsc"
INSTALL = "run `make snippet-toolchains` (as root) to install it"
TIMEOUT = 120
# A JVM that starts sooner (no optimising compiler, one GC thread): these programs run for a second at most.
_QUICK_JVM = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:CICompilerCount=1")


def _which(name: str) -> str | None:
    return shutil.which(name)


NODE = _which("node") or ("/usr/bin/node" if Path("/usr/bin/node").exists() else None)


def _php_has_curl(php: str) -> bool:
    probe = subprocess.run(
        [php, "-r", "exit(function_exists('curl_init') ? 0 : 1);"], capture_output=True, timeout=30, check=False
    )
    return probe.returncode == 0


def missing(language: str) -> str | None:
    """Why snippets in `language` cannot be built and run here (one line naming the tool), or None."""
    if language == "python":
        return None
    if language == "javascript":
        return None if NODE else "JavaScript snippets not run: no `node` on PATH"
    if language == "curl":
        return None if _which("curl") and _which("bash") else "curl snippets not run: no `curl` or `bash` on PATH"
    if language == "typescript":
        if not NODE:
            return "TypeScript snippets not run: no `node` on PATH"
        if not TSC.exists():
            return f"TypeScript snippets not type-checked or run: no {TSC.relative_to(REPO_ROOT)}; {INSTALL}"
        return None
    if language == "go":
        if _which("go") and _which("gofmt"):
            return None
        return f"Go snippets not built or run: no `go` on PATH (Debian's golang-go); {INSTALL}"
    if language == "java":
        if _which("java") and _which("javac"):
            return None
        return f"Java snippets not built or run: no `java`/`javac` (Debian's default-jdk-headless); {INSTALL}"
    if language == "ruby":
        return None if _which("ruby") else f"Ruby snippets not run: no `ruby` on PATH (Debian's ruby); {INSTALL}"
    if language == "php":
        php = _which("php")
        if php and _php_has_curl(php):
            return None
        return f"PHP snippets not run: no `php` with the curl extension (Debian's php-cli, php-curl); {INSTALL}"
    if language == "csharp":
        if _which("mcs") and _which("mono"):
            return None
        return (
            "C# snippets not built or run: no C# compiler (Mono's `mcs` and `mono`: Debian's mono-mcs, "
            f"libmono-system-net-http4.0-cil; Debian has no .NET SDK package); {INSTALL}"
        )
    raise ValueError(f"no toolchain for {language}")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment snippets run in: no proxies (everything goes to 127.0.0.1), no network for Go."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update({"NO_PROXY": "*", "GOPROXY": "off", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"})
    env.update(extra or {})
    return env


def _call(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


@dataclass
class Program:
    """A built snippet: the command that runs it, from its folder (where `file.bin` is)."""

    argv: list[str]
    cwd: Path

    def run(self, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """Run it; the test fails with its output unless it exits 0."""
        result = _call(self.argv, self.cwd, clean_env(env))
        assert result.returncode == 0, f"{self.argv[0]} failed:\n{result.stdout}\n{result.stderr}"
        return result


@dataclass
class BuildError:
    """What the compiler or checker said about one snippet."""

    output: str


Built = Program | BuildError

_EXTENSIONS = {
    "python": "py", "javascript": "mjs", "curl": "sh", "typescript": "mts", "go": "go", "java": "java",
    "ruby": "rb", "php": "php", "csharp": "cs",
}


def build(language: str, snippets: dict[str, str], workdir: Path, file_content: bytes) -> dict[str, Built]:
    """Check and compile `snippets` (name -> code; names are identifiers) in `workdir`; `file.bin` beside each."""
    folders: dict[str, Path] = {}
    for name, code in snippets.items():
        folder = workdir / language / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "file.bin").write_bytes(file_content)
        filename = "main.go" if language == "go" else f"snippet.{_EXTENSIONS[language]}"
        (folder / filename).write_text(code, encoding="utf-8")
        folders[name] = folder
    if language == "typescript":
        return _build_typescript(folders, workdir / language)
    if language == "go":
        return _build_go(folders, workdir / language)
    if language == "java":
        return _build_java(snippets, folders, workdir / language)
    return {name: _build_one(language, folder) for name, folder in folders.items()}


def _build_one(language: str, folder: Path) -> Built:
    source = folder / f"snippet.{_EXTENSIONS[language]}"
    if language == "python":
        try:
            compile(source.read_text(encoding="utf-8"), str(source), "exec")
        except SyntaxError as error:
            return BuildError(str(error))
        return Program([sys.executable, source.name], folder)
    if language == "javascript":
        assert NODE
        checked = _call([NODE, "--check", source.name], folder)
        return Program([NODE, source.name], folder) if checked.returncode == 0 else BuildError(checked.stderr)
    if language == "curl":
        checked = _call(["bash", "-n", source.name], folder)
        return Program(["bash", source.name], folder) if checked.returncode == 0 else BuildError(checked.stderr)
    if language == "ruby":
        checked = _call(["ruby", "-c", source.name], folder)
        return Program(["ruby", source.name], folder) if checked.returncode == 0 else BuildError(checked.stderr)
    if language == "php":
        checked = _call(["php", "-l", source.name], folder)
        ok = checked.returncode == 0
        return Program(["php", source.name], folder) if ok else BuildError(checked.stdout + checked.stderr)
    if language == "csharp":
        compiled = _call(["mcs", "-r:System.Net.Http", "-out:snippet.exe", source.name], folder)
        if compiled.returncode != 0:
            return BuildError(compiled.stdout + compiled.stderr)
        return Program(["mono", "snippet.exe"], folder)
    raise ValueError(language)


def _build_typescript(folders: dict[str, Path], root: Path) -> dict[str, Built]:
    """One `tsc --strict` run type-checks and compiles every file; each error line names its file."""
    assert NODE
    files = [str(folder / "snippet.mts") for folder in folders.values()]
    compiled = _call(
        [
            str(TSC), "--strict", "--skipLibCheck", "--target", "es2022", "--module", "nodenext",
            "--moduleResolution", "nodenext", "--typeRoots", str(TS_TOOLS / "@types"), "--types", "node",
            "--rootDir", str(root), "--outDir", str(root / "out"), *files,
        ],
        root,
    )
    results: dict[str, Built] = {}
    for name, folder in folders.items():
        errors = [line for line in compiled.stdout.splitlines() if f"/{name}/snippet.mts" in line]
        emitted = root / "out" / name / "snippet.mjs"
        if errors or (compiled.returncode != 0 and not compiled.stdout.strip()):
            results[name] = BuildError("\n".join(errors) or compiled.stderr)
        else:
            assert emitted.exists(), compiled.stdout + compiled.stderr
            results[name] = Program([NODE, str(emitted)], folder)
    return results


def _build_go(folders: dict[str, Path], root: Path) -> dict[str, Built]:
    """One `go build` for every program (a module whose packages are the snippets), then `gofmt -l`."""
    (root / "go.mod").write_text("module snippets\n\ngo 1.18\n")
    built = _call(["go", "build", "-o", str(root / "bin") + "/", "./..."], root)
    unformatted = _call(["gofmt", "-l", *[str(f / "main.go") for f in folders.values()]], root).stdout
    results: dict[str, Built] = {}
    for name, folder in folders.items():
        binary = root / "bin" / name
        if built.returncode != 0:  # go build writes nothing when a package fails: say which one
            errors = _go_errors(built.stderr, name)
            if errors:
                results[name] = BuildError(errors)
                continue
            alone = _call(["go", "build", "-o", str(binary), "./" + name], root)
            if alone.returncode != 0:
                results[name] = BuildError(alone.stderr)
                continue
        if str(folder / "main.go") in unformatted:
            diff = _call(["gofmt", "-d", str(folder / "main.go")], root).stdout
            results[name] = BuildError("not gofmt-formatted:\n" + diff)
            continue
        results[name] = Program([str(binary)], folder)
    return results


def _go_errors(stderr: str, name: str) -> str:
    sections = re.split(r"^# ", stderr, flags=re.M)
    return "\n".join(s for s in sections if s.startswith(f"snippets/{name}\n"))


def _build_java(snippets: dict[str, str], folders: dict[str, Path], root: Path) -> dict[str, Built]:
    """One javac run for every snippet, each class renamed `Main_<name>` in a file of that name."""
    sources: list[str] = []
    for name, code in snippets.items():
        renamed, count = re.subn(r"^public class Main \{$", f"public class Main_{name} {{", code, flags=re.M)
        assert count == 1, "a Java snippet declares `public class Main {` once"
        source = folders[name] / f"Main_{name}.java"
        source.write_text(renamed, encoding="utf-8")
        sources.append(str(source))
    classes = root / "classes"
    compiled = _javac(sources, classes, root)
    results: dict[str, Built] = {}
    for name, folder in folders.items():
        if compiled.returncode != 0:  # javac writes no class when any file fails: say which one
            errors = [line for line in compiled.stderr.splitlines() if f"Main_{name}.java" in line]
            alone = _javac([str(folder / f"Main_{name}.java")], classes, root) if not errors else compiled
            if errors or alone.returncode != 0:
                results[name] = BuildError("\n".join(errors) or alone.stderr)
                continue
        results[name] = Program(["java", *_QUICK_JVM, "-cp", str(classes), f"Main_{name}"], folder)
    return results


def _javac(sources: list[str], classes: Path, root: Path) -> subprocess.CompletedProcess[str]:
    # US-ASCII: the snippets promise source that reads the same in any platform encoding.
    quick = [f"-J{flag}" for flag in _QUICK_JVM]
    return _call(["javac", *quick, "-encoding", "US-ASCII", "-d", str(classes), *sources], root)

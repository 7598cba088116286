"""The man page rasterfs(1) and the bash completion (issue 12, item 1), and
the README with docs/ held against the code and the repository (item 6).

The page is written at build time by the binary from its tables
(`rasterfs --internal-man docs/rasterfs.1.in`, src/doc.c); these tests
read it as groff and man(1) do, and hold it against lists taken elsewhere:
the steps `rasterfs steps` prints and the grammar names in its "Steps:"
message, the options `rasterfs --help` prints and a real mount accepts,
the error rows of src/err.c read as text.  The completion script is run
in a real bash, under bash's default COMP_WORDBREAKS (which splits words
at '@', '=' and ':'): its function called with COMP_WORDS, COMP_CWORD,
COMP_LINE and COMP_POINT as bash sets them, and, end to end, in an
interactive bash on a pseudo-terminal where TAB is pressed.  Then
`meson install --destdir` puts both where man(1) and bash-completion look.
"""

import os
import pty
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rfsmount import BIN

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("RASTERFS_BUILD_DIR", Path(BIN).parent))
PAGE = BUILD / "rasterfs.1"
SCRIPT = ROOT / "completions" / "rasterfs"
DEFAULT_BREAKS = " \t\n\"'@><=;|&(:"


def _run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=60, text=True,
                          **kw)


@pytest.fixture(scope="module")
def page():
    if not PAGE.exists():
        pytest.fail("%s is missing: meson compile builds it" % PAGE)
    return PAGE.read_text()


@pytest.fixture(scope="module")
def rendered():
    """The page as man(1) shows it, one long line per paragraph."""
    if not shutil.which("man"):
        pytest.fail("man is missing (scripts/setup.sh installs man-db)")
    r = _run(["man", "-l", str(PAGE)],
             env=dict(os.environ, MANWIDTH="1000", MAN_KEEP_FORMATTING="",
                      LC_ALL="C.UTF-8"))
    assert r.returncode == 0, r.stderr
    return r.stdout


def _section(page, name):
    """The roff source of section .SH name, up to the next .SH."""
    m = re.search(r"^\.SH %s\n(.*?)(?=^\.SH )" % re.escape(name), page,
                  re.S | re.M)
    assert m, "no section %s" % name
    return m.group(1)


# -- the page ----------------------------------------------------------------

def test_man_renders_without_warnings():
    if not shutil.which("groff"):
        pytest.fail("groff is missing (scripts/setup.sh installs groff-base)")
    r = _run(["groff", "-ww", "-z", "-man", str(PAGE)])
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = _run(["man", "--warnings", "-l", str(PAGE)],
             env=dict(os.environ, MANWIDTH="80"))
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "RASTERFS(1)" in r.stdout


def test_man_sections(page):
    for name in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS",
                 "VIRTUAL NAMES", "STEPS", "ERRORS", "FILES", "ENVIRONMENT",
                 "EXAMPLES", "SEE ALSO"):
        assert re.search(r"^\.SH %s$" % name, page, re.M), name
    assert "@RFS_" not in page
    version = _run([BIN, "--version"]).stdout.split()[1]
    assert '"rasterfs %s"' % version in page


def _steps_listed():
    """The steps of `rasterfs steps` ("name: summary" at column 0)."""
    r = _run([BIN, "steps"])
    assert r.returncode == 0, r.stderr
    return re.findall(r"^([a-z]+): ", r.stdout, re.M), r.stdout


def test_man_names_every_step(page, rendered):
    steps, text = _steps_listed()
    assert "focal" in steps and steps[-1] == "fmt", steps
    # the grammar's own list, from its message for a name that is no step
    r = _run([BIN, "check", "dem.tif@nosuchstep=1"])
    m = re.search(r"Steps: ([a-z, ]+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    grammar = [s.strip() for s in m.group(1).split(",")]
    assert grammar == steps[:-1], (grammar, steps)
    # the page has one subsection per step, in the table's order
    on_page = re.findall(r"^\.SS (\S+)$", _section(page, "STEPS"), re.M)
    assert on_page == steps, (on_page, steps)
    # and each one's usage and example, as `rasterfs steps` has them
    usages = re.findall(r"^  usage    (.*(?:\n {11}(?!no arguments).*)*)",
                        text, re.M)
    assert len(usages) == len(steps)
    for usage in usages:
        usage = re.sub(r"\n {11}", " ", usage)
        assert "Usage: " + usage in rendered, usage
    for example in re.findall(r"^  example  (\S+)", text, re.M):
        assert "Example: " + example in rendered, example


def _help_options():
    """The -o options of `rasterfs --help`: rasterfs's own, then libfuse's."""
    r = _run([BIN, "--help"])
    assert r.returncode == 0, r.stderr
    own = r.stdout.split("rasterfs options")[1].split("FUSE options")[0]
    fuse = r.stdout.split("FUSE options often used")[1].split("commands:")[0]
    pat = re.compile(r"^    ([a-z_]+)(=\S+)?", re.M)
    return ([(m.group(1), m.group(2)) for m in pat.finditer(own)],
            [(m.group(1), m.group(2)) for m in pat.finditer(fuse)])


def test_man_names_every_option(page):
    own, fuse = _help_options()
    names = [n for n, _ in own]
    for n in ("cache", "workers", "max_pixels", "cache_size", "view", "uid",
              "describers", "describe_timeout"):
        assert n in names, names
    options = _section(page, "OPTIONS")
    for name, arg in own + fuse:
        roff = "\\fB%s" % name + ("=\\fI%s" % arg[1:].replace("-", "\\-")
                                  if arg else "\\fR")
        assert roff in options, roff
    assert len(re.findall(r"^\.TP\n\\fB[a-z_]+", options, re.M)) == \
        len(own) + len(fuse)


def _option_value(name, arg, tmp):
    return {"DIR": str(tmp / "c"), "N": "1", "MB": "512", "S": "30",
            "SIZE": "1G", "0|1": "1", "NAME:CHAIN": "v:@focal=3"}[arg[1:]] \
        if name not in ("uid", "gid") else \
        str(os.getuid() if name == "uid" else os.getgid())


def test_every_documented_option_mounts(mount_factory, tmp_path):
    """The parser knows every option the page and --help name: one mount
    with all of rasterfs's own; a misspelt one is refused (RFS-E400)."""
    own, _ = _help_options()
    opts = ["%s=%s" % (n, _option_value(n, a, tmp_path)) for n, a in own
            if n not in ("cache", "workers")]
    m = mount_factory(options=opts)
    assert (m.mnt / "v").is_dir()
    r = _run([BIN, "-f", str(m.src), str(tmp_path / "x"), "-o",
              "cache=%s,workres=2" % (tmp_path / "c2")])
    assert r.returncode != 0 and "RFS-E400" in r.stderr, r.stderr


def test_man_names_every_error(page):
    """Every row of src/err.c, read as text, with its errno."""
    rows = re.findall(r'\{ RFS_E_\w+, "(RFS-E\d{3})", (E[A-Z]+),',
                      (ROOT / "src" / "err.c").read_text())
    assert len(rows) > 20, rows
    errors = _section(page, "ERRORS")
    for code, errno in rows:
        assert "\\fB%s\\fR (%s)" % (code.replace("-", "\\-"), errno) \
            in errors, code
    assert len(re.findall(r"^\.TP$", errors, re.M)) == len(rows)


def test_man_synopsis_and_files(page, rendered):
    r = _run([BIN, "--help"])
    cmds = re.findall(r"^    \S*rasterfs (\w+)\b", r.stdout, re.M)
    assert cmds == ["status", "warm", "cancel", "cache", "check", "run",
                    "steps"], \
        cmds
    synopsis = _section(page, "SYNOPSIS")
    for c in cmds:
        assert "\\fBrasterfs %s\\fR" % c in synopsis, c
    assert "mount.fuse.rasterfs" in synopsis
    for f in ("stats", "jobs", "log", "steps"):
        assert "MOUNTPOINT/.rasterfs/%s" % f in rendered, f
    for env in ("XDG_CACHE_HOME", "XDG_STATE_HOME"):
        assert env in _section(page, "ENVIRONMENT")


# -- completion: the function, called as bash calls it ----------------------

def _comp_words(line, breaks):
    """COMP_WORDS and COMP_CWORD as bash makes them from line (cursor at
    its end): words split at blanks, and each run of COMP_WORDBREAKS
    characters a word of its own, except inside quotes."""
    words, cur, quote, kind = [], "", None, None
    for c in line:
        if quote:
            cur += c
            quote = None if c == quote else quote
            continue
        if c in "'\"":
            quote = c
            if kind == "break":
                words.append(cur)
                cur = ""
            cur += c
            kind = "word"
            continue
        if c in " \t\n":
            if cur:
                words.append(cur)
            cur, kind = "", None
            continue
        k = "break" if c in breaks else "word"
        if cur and k != kind:
            words.append(cur)
            cur = ""
        cur += c
        kind = k
    words.append(cur)
    return words, len(words) - 1


def words_of_line(line):
    """The shell words of line, quotes kept; the last is the current one
    (empty after a blank)."""
    words, cur, q = [], "", None
    for c in line:
        if q:
            q = None if c == q else q
        elif c in "'\"":
            q = c
        elif c in " \t\n":
            words.append(cur)
            cur = ""
            continue
        cur += c
    return words + [cur]


def _readline_word(line, breaks):
    """The text readline replaces with a completion: after the last
    COMP_WORDBREAKS character, but with it if it is '@' or '$' (bash's
    rl_special_prefixes), or after an open quote."""
    q = None
    start = 0
    for i, c in enumerate(line):
        if q:
            if c == q:
                q = None
            continue
        if c in "'\"":
            q = c
            start = i + 1
        elif c in breaks:
            start = i if c in "@$" else i + 1
    return line[start:]


def complete(line, cwd, path=None, breaks=None):
    """Run the completion for line in bash; returns (COMPREPLY, compopt
    options, the words readline would make of each reply)."""
    env = dict(os.environ, PATH="%s:%s" % (path or Path(BIN).parent,
                                            os.environ.get("PATH", "")))
    words, cword = _comp_words(line, breaks or DEFAULT_BREAKS)
    script = r"""
        [[ $COMP_WORDBREAKS == %s ]] || { echo "COMP_WORDBREAKS: $COMP_WORDBREAKS" >&2; exit 3; }
        %s
        source %s
        compopt() { printf 'compopt %%s\n' "$*" >>"$OPTS"; }
        COMP_LINE=%s
        COMP_POINT=${#COMP_LINE}
        COMP_WORDS=(%s)
        COMP_CWORD=%d
        _rasterfs
        printf '%%s\n' "${COMPREPLY[@]}"
    """ % (_bash_quote(DEFAULT_BREAKS),
           "COMP_WORDBREAKS=%s" % _bash_quote(breaks) if breaks else "",
           _bash_quote(str(SCRIPT)), _bash_quote(line),
           " ".join(_bash_quote(w) for w in words), cword)
    opts = Path(cwd) / ".compopt"
    opts.write_text("")
    env["OPTS"] = str(opts)
    r = subprocess.run(["bash", "-c", script], cwd=cwd, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, text=True)
    assert r.returncode == 0, r.stderr
    assert "compopt: " not in r.stderr, r.stderr
    reply = [x for x in r.stdout.split("\n") if x]
    cur = words_of_line(line)[-1]
    keep = cur[:len(cur) - len(_readline_word(cur, breaks or
                                              DEFAULT_BREAKS))]
    return reply, opts.read_text(), [keep + x for x in reply]


def _bash_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def test_bash_default_wordbreaks_split_at_eq_and_colon():
    """The premise: bash's default COMP_WORDBREAKS holds '=', ':' and '@'."""
    r = _run(["bash", "-c", 'printf %s "$COMP_WORDBREAKS"'])
    assert r.stdout == DEFAULT_BREAKS
    assert _comp_words("rasterfs x.tif@proj=EPSG:3857,bi", DEFAULT_BREAKS) \
        == (["rasterfs", "x.tif", "@", "proj", "=", "EPSG", ":", "3857,bi"],
            7)


@pytest.mark.parametrize("line,want", [
    ("rasterfs check dem.tif@fo", "dem.tif@focal="),
    ("rasterfs warm mnt/dem.tif@fo", "mnt/dem.tif@focal="),
    ("rasterfs dem.tif@fo", "dem.tif@focal="),
    ("rasterfs check dem.tif@focal=3,ma", "dem.tif@focal=3,max"),
    ("rasterfs check dem.tif@proj=EPSG:3857,bi",
     "dem.tif@proj=EPSG:3857,bilinear"),
    ("rasterfs check dem.tif@proj=EPSG_3857,cubicsp",
     "dem.tif@proj=EPSG_3857,cubicspline"),
    ("rasterfs check dem.tif@focal=3@slope=per", "dem.tif@focal=3@slope=percent"),
    ("rasterfs check dem.tif@focal=3,shape=ci", "dem.tif@focal=3,shape=circle"),
    ("rasterfs check dem.tif@focal=5,max,sh", "dem.tif@focal=5,max,shape="),
    ("rasterfs check dem.tif@type=fl", None),
    ("rasterfs check dem.tif@focal=3@fmt=png,mi",
     "dem.tif@focal=3@fmt=png,minmax"),
    ("rasterfs check dem.tif@reclass=0:1:1,other=n",
     "dem.tif@reclass=0:1:1,other=nodata"),
    ("rasterfs check dem.tif@hillshade=mu", "dem.tif@hillshade=multidirectional"),
    ("rasterfs check dem.tif@ro", "dem.tif@roughness"),
    ("rasterfs cac", "cache"),
    ("rasterfs cache v", "verify"),
    ("rasterfs warm --w", "--wait"),
    ("rasterfs -o work", None),
    ("rasterfs -o cache_s", "cache_size="),
    ("rasterfs -o cache=/tmp,keep_p", "cache=/tmp,keep_prefixes="),
    ("rasterfs src mnt -o view=hs:@proj=EPSG:3857@foc",
     "view=hs:@proj=EPSG:3857@focal="),
])
def test_complete(tmp_path, line, want):
    reply, opts, words = complete(line, tmp_path)
    if want is None:
        return
    assert words == [want], (reply, words)


def test_complete_sets(tmp_path):
    _, _, words = complete("rasterfs -o work", tmp_path)
    assert words == ["workers=", "worker_mem="]
    reply, opts, words = complete("rasterfs check dem.tif@type=fl", tmp_path)
    assert words == ["dem.tif@type=Float32", "dem.tif@type=Float64"]
    # every step after '@', and a bare step also without '='
    _, _, words = complete("rasterfs check dem.tif@", tmp_path)
    steps, _ = _steps_listed()
    names = {w[len("dem.tif@"):].rstrip("=") for w in words}
    assert names == set(steps), (names, steps)
    assert "dem.tif@slope" in words and "dem.tif@slope=" in words
    assert "dem.tif@aspect=" not in words and "dem.tif@proj" not in words
    # after '=' or ',': the step's words and keys
    _, _, words = complete("rasterfs check dem.tif@focal=3,", tmp_path)
    assert {"dem.tif@focal=3,max", "dem.tif@focal=3,circle",
            "dem.tif@focal=3,stat="} <= set(words), words
    # commands, flags
    _, _, words = complete("rasterfs ca", tmp_path)
    assert words == ["cancel", "cache"], words
    _, _, words = complete("rasterfs ", tmp_path)
    assert {"status", "warm", "cancel", "cache", "check", "steps"} <= \
        set(words), words
    _, _, words = complete("rasterfs -", tmp_path)
    assert {"-f", "-o", "-d", "--help"} <= set(words), words


def test_complete_no_space_after_names(tmp_path):
    _, opts, _ = complete("rasterfs check dem.tif@fo", tmp_path)
    assert "-o nospace" in opts
    _, opts, _ = complete("rasterfs -o work", tmp_path)
    assert "-o nospace" in opts


def test_complete_file_names(tmp_path):
    """Before the '@', file names as usual; then the steps."""
    (tmp_path / "dem.tif").write_bytes(b"")
    (tmp_path / "demo").mkdir()
    (tmp_path / "a@b.tif").write_bytes(b"")
    (tmp_path / "other.tif").write_bytes(b"")
    reply, opts, words = complete("rasterfs check de", tmp_path)
    assert sorted(words) == ["dem.tif", "demo"], words
    assert "-o filenames" in opts
    _, opts, words = complete("rasterfs warm dem.", tmp_path)
    assert words == ["dem.tif"] and "-o nospace" in opts
    _, _, words = complete("rasterfs warm demo/", tmp_path)
    assert words == []
    # a file whose own name holds an '@'
    _, _, words = complete("rasterfs check a@b", tmp_path)
    assert words == ["a@b.tif"], words
    _, _, words = complete("rasterfs check a@b.tif@sl", tmp_path)
    assert words == ["a@b.tif@slope", "a@b.tif@slope="], words
    # directories for a mount and for status
    _, _, words = complete("rasterfs d", tmp_path)
    assert words == ["demo"], words
    _, _, words = complete("rasterfs status d", tmp_path)
    assert words == ["demo"], words


def test_complete_without_wordbreaks(tmp_path):
    """With '=', ':' and '@' taken out of COMP_WORDBREAKS (as some users
    do) the replies are whole words."""
    reply, _, words = complete("rasterfs check dem.tif@proj=EPSG:3857,bi",
                               tmp_path, breaks=" \t\n\"'><;|&(")
    assert reply == ["dem.tif@proj=EPSG:3857,bilinear"], reply


def test_complete_words_follow_the_binary(tmp_path):
    """The words are the binary's: a rasterfs on PATH that lists another
    step completes that one (the script holds no list of its own)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "rasterfs").write_text(
        "#!/bin/sh\n[ \"$1\" = --internal-complete ] && "
        "printf 'S zoom zoom=\\nK zoom factor 2 4\\n'\n")
    (fake / "rasterfs").chmod(0o755)
    _, _, words = complete("rasterfs check dem.tif@zo", tmp_path, path=fake)
    assert words == ["dem.tif@zoom="], words
    _, _, words = complete("rasterfs check dem.tif@zoom=factor=", tmp_path,
                           path=fake)
    assert words == ["dem.tif@zoom=factor=2", "dem.tif@zoom=factor=4"]
    _, _, words = complete("rasterfs check dem.tif@fo", tmp_path, path=fake)
    assert words == []


# -- completion: end to end, TAB in an interactive bash ------------------------

class Pty:
    """An interactive bash on a pseudo-terminal, killed at the end."""

    def __init__(self, cwd, path):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(cwd)
            os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"],
                       {"PS1": "$ ", "TERM": "dumb", "HOME": str(cwd),
                        "PATH": "%s:/usr/bin:/bin" % path})

    def read_until(self, marker, timeout=20.0):
        out = b""
        end = time.monotonic() + timeout
        while marker not in out and time.monotonic() < end:
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                try:
                    out += os.read(self.fd, 65536)
                except OSError:
                    break
        return out

    def send(self, text):
        os.write(self.fd, text.encode())

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.mark.parametrize("typed,want", [
    ("rasterfs check dem.tif@fo", "rasterfs check dem.tif@focal="),
    ("rasterfs check dem.tif@focal=3,ma", "rasterfs check dem.tif@focal=3,max"),
    ("rasterfs check dem.tif@proj=EPSG:3857,bi",
     "rasterfs check dem.tif@proj=EPSG:3857,bilinear"),
    ("rasterfs -o cache_s", "rasterfs -o cache_size="),
    ("rasterfs cac", "rasterfs cache"),
])
def test_tab_in_interactive_bash(tmp_path, typed, want):
    """readline itself applies the reply: type, TAB, then turn the line
    into an echo of itself (C-a, 'echo LINE: ', Enter) and read it.  Under
    bash's default COMP_WORDBREAKS: readline keeps an '@' in the text it
    completes (rl_special_prefixes), which the function call above cannot
    show."""
    sh = Pty(tmp_path, Path(BIN).parent)
    try:
        sh.read_until(b"$ ")
        sh.send("source %s; echo READY\n" % _bash_quote(str(SCRIPT)))
        assert b"READY" in sh.read_until(b"READY\r\n$ ")
        # readline runs the completion before it reads the next keys
        sh.send(typed + "\t" + "\x01echo 'LINE:' \n")
        out = sh.read_until(b"\r\n$ ").decode(errors="replace")
    finally:
        sh.close()
    m = re.search(r"^LINE: (.*?)\r?$", out, re.M)
    assert m, out
    assert m.group(1).rstrip() == want, out


# -- installed -----------------------------------------------------------------

def test_install_puts_page_and_completion(tmp_path):
    if not (BUILD / "meson-private").is_dir():
        pytest.fail("%s is not a meson build directory (set "
                    "RASTERFS_BUILD_DIR)" % BUILD)
    dest = tmp_path / "dest"
    r = subprocess.run(["meson", "install", "-C", str(BUILD), "--destdir",
                        str(dest), "--no-rebuild", "--skip-subprojects",
                        "--quiet"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300, text=True)
    assert r.returncode == 0, r.stdout
    bins = list(dest.glob("**/bin/rasterfs"))
    assert len(bins) == 1, bins
    root = bins[0].parent.parent
    man1 = root / "share" / "man" / "man1" / "rasterfs.1"
    assert man1.read_bytes() == PAGE.read_bytes()
    # man finds it by name under the installed prefix
    r = _run(["man", "-w", "rasterfs"],
             env=dict(os.environ, MANPATH=str(root / "share" / "man")))
    assert r.stdout.strip() == str(man1), r.stdout + r.stderr
    comp = root / "share" / "bash-completion" / "completions"
    assert (comp / "rasterfs").read_bytes() == SCRIPT.read_bytes()
    assert os.readlink(comp / "mount.fuse.rasterfs") == "rasterfs"
    # bash-completion's own loader finds it there (XDG_DATA_DIRS)
    loader = Path("/usr/share/bash-completion/bash_completion")
    if not loader.exists():
        pytest.fail("bash-completion is missing (scripts/setup.sh installs "
                    "it)")
    for name in ("rasterfs", "mount.fuse.rasterfs"):
        r = _run(["bash", "-c", "source %s; __load_completion %s; "
                  "complete -p %s" % (loader, name, name)],
                 env=dict(os.environ, XDG_DATA_DIRS=str(root / "share"),
                          HOME=str(tmp_path)))
        assert "-F _rasterfs %s" % name in r.stdout, r.stdout + r.stderr


# -- the README and docs/ (issue 12, item 6) -----------------------------------
#
# The README is one page; the rest is in docs/*.md.  Held against the code
# (src/err.c's table, `rasterfs --help`), against the files of the
# repository (every link resolves to a tracked file inside it, every anchor
# to a heading), and against CI (.ci/run runs the README's test command).

README = ROOT / "README.md"
DOCS = ROOT / "docs"


def _doc_files():
    files = [README] + sorted(DOCS.glob("*.md"))
    assert len(files) > 8, files
    return files


def _strip_code(text):
    """text without fenced blocks (their lines blanked, so line numbers
    stay) and without inline code spans."""
    text = re.sub(r"^```.*?^```[^\n]*$",
                  lambda m: "\n" * m.group(0).count("\n"), text,
                  flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _slug(heading):
    """The anchor GitHub (and most renderers) give a heading."""
    h = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return h.replace(" ", "-")


def _anchors(path):
    """The anchors of path's headings (outside fenced blocks), from the
    text as written: a heading's code span is part of its anchor."""
    seen, out, fence = {}, set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"^#{1,6} (.*)$", line)
        if m:
            s = _slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else "%s-%d" % (s, n))
    return out


def _links(path):
    """(line, target) of every inline link and image outside code."""
    text = _strip_code(path.read_text())
    for m in re.finditer(r"\]\(([^)\s]*)\)", text):
        yield text.count("\n", 0, m.start()) + 1, m.group(1)


def _tracked(path):
    """Whether git tracks path (a file, or a directory holding tracked
    files); without a git checkout, whether it exists."""
    if not (ROOT / ".git").exists():
        return path.exists()
    r = _run(["git", "-C", str(ROOT), "ls-files", "--",
              str(path.relative_to(ROOT))])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip() != ""


def test_docs_links_resolve_inside_the_repository():
    """Every link of README.md and docs/*.md is relative, names a file git
    tracks inside the repository, and its #anchor a heading of that file;
    no link, autolink or bare URL leaves the repository, and no path names
    the directories beside a checkout that a clone does not have."""
    checked = 0
    for doc in _doc_files():
        where = doc.relative_to(ROOT)
        text = doc.read_text()
        for bad in re.finditer(r"\.\./shared|/work/", text):
            pytest.fail("%s: '%s' is outside the repository" %
                        (where, text[bad.start():bad.start() + 40]))
        prose = _strip_code(text)
        assert not re.search(r"<?\b(https?|ftp)://", prose), \
            "%s: a URL outside the repository: %s" % (
                where, re.search(r"\S*(https?|ftp)://\S*", prose).group(0))
        for line, target in _links(doc):
            what = "%s:%d: link (%s)" % (where, line, target)
            assert target, what + " is empty"
            assert not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target), \
                what + " leaves the repository"
            assert not target.startswith("/"), what + " is absolute"
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            assert dest == ROOT or ROOT in dest.parents, \
                what + " leaves the repository"
            assert dest.exists() and _tracked(dest), \
                what + " names no file of the repository"
            if anchor:
                assert dest.suffix == ".md", what + ": anchor of a non-md"
                assert anchor in _anchors(dest), \
                    what + ": no heading #%s in %s" % (
                        anchor, dest.relative_to(ROOT))
            checked += 1
    assert checked > 40, checked


def test_links_checker_sees_what_it_must():
    """The checker's parts on text with known answers (a link spread over
    two lines, a link in code that is no link, a heading with code)."""
    tmp = DOCS / "rasterfs.1.in"   # any tracked file will do for _tracked
    assert _tracked(tmp) and not _tracked(DOCS / "no-such-file.md")
    assert _slug("Checking a name: `rasterfs check`") == \
        "checking-a-name-rasterfs-check"
    assert _slug("Installing: `mount -t fuse.rasterfs`, fstab, systemd") \
        == "installing-mount--t-fuserasterfs-fstab-systemd"
    text = ("see [What a\n  virtual file](outputs.md#x) and `[a](b)`\n"
            "```\n[c](d)\n```\n[e](f#g)\n")
    stripped = _strip_code(text)
    found = re.findall(r"\]\(([^)\s]*)\)", stripped)
    assert found == ["outputs.md#x", "f#g"], found


def test_readme_is_one_page_with_the_setup_commands():
    """Under 200 lines; the two set-up commands as the README has always
    given them, the second being what CI runs; and a link to every file of
    docs/."""
    text = README.read_text()
    lines = text.splitlines()
    assert len(lines) < 200, "README.md has %d lines" % len(lines)
    assert "    bash scripts/demo.sh" in lines
    assert "    bash scripts/test.sh" in lines
    ci = (ROOT / ".ci" / "run").read_text()
    assert "the README's test command" in ci
    assert re.search(r"^bash scripts/test\.sh$", ci, re.M), ci
    linked = {t.partition("#")[0] for _, t in _links(README)}
    for doc in sorted(DOCS.glob("*.md")):
        assert "docs/" + doc.name in linked, \
            "README.md does not link docs/%s" % doc.name


def test_each_doc_opens_with_what_it_covers():
    for doc in sorted(DOCS.glob("*.md")):
        lines = doc.read_text().splitlines()
        assert lines[0].startswith("# "), doc.name
        assert lines[1] == "" and lines[2] and not lines[2].startswith(
            ("#", "|", "    ", "```")), \
            "%s: no paragraph under its title saying what it covers" % \
            doc.name


def test_docs_error_table_is_err_c():
    """docs/errors.md has one row per row of src/err.c, read as text, in
    its order, with the same errno; no code the table does not know."""
    rows = re.findall(r'\{ RFS_E_\w+, "(RFS-E\d{3})", (E[A-Z]+),',
                      (ROOT / "src" / "err.c").read_text())
    assert len(rows) > 20, rows
    doc = re.findall(r"^\| (RFS-E\d{3}) \| (E[A-Z]+) \| (.+) \| (.+) \|$",
                     (DOCS / "errors.md").read_text(), re.M)
    assert [(c, e) for c, e, _, _ in doc] == rows, \
        "docs/errors.md's table differs from src/err.c"
    for code, _, meaning, remedy in doc:
        assert meaning.strip() and remedy.strip(), code
    # and every code the docs mention anywhere is a code
    known = {c for c, _ in rows}
    for f in _doc_files():
        for code in re.findall(r"RFS-E\d{3}", f.read_text()):
            assert code in known, "%s names %s, not in src/err.c" % (
                f.name, code)


def test_docs_option_table_names_every_option():
    """Every option `rasterfs --help` lists as rasterfs's own has a row in
    docs/options.md, spelt as --help spells it."""
    own, _ = _help_options()
    table = [x for x in (DOCS / "options.md").read_text().splitlines()
             if x.startswith("| `")]
    for name, arg in own:
        spelt = "`%s%s`" % (name, arg or "")
        assert any(spelt in row.split(" | ")[0].replace("\\|", "|")
                   for row in table), \
            "docs/options.md has no row for %s" % spelt


def test_docs_show_every_command():
    """Every command of `rasterfs --help` has its usage line in docs/."""
    r = _run([BIN, "--help"])
    cmds = re.findall(r"^    \S*rasterfs (\w+)\b", r.stdout, re.M)
    assert len(cmds) >= 7, cmds
    text = "\n".join(d.read_text() for d in sorted(DOCS.glob("*.md")))
    for c in cmds:
        assert re.search(r"^    rasterfs %s\b" % c, text, re.M), c
CLUSTER_DOC = ROOT / "docs" / "cluster.md"


def test_cluster_doc_codes_exist():
    """Every RFS code docs/cluster.md names (ranges such as RFS-E100-E107
    and lists such as RFS-E202, E203 included) is a row of src/err.c."""
    rows = set(re.findall(r'\{ RFS_E_\w+, "RFS-(E\d{3})"',
                          (ROOT / "src" / "err.c").read_text()))
    text = CLUSTER_DOC.read_text()
    named = set()
    for m in re.finditer(r"RFS-E\d{3}(?:[\u2013\-, ]+(?:and |or )?E\d{3})*",
                         text):
        named |= set(re.findall(r"E\d{3}", m.group(0)))
    assert len(named) > 10, named
    assert named <= rows, sorted(named - rows)


def test_cluster_doc_options_and_counters(mount_factory, tmp_path):
    """The options docs/cluster.md's table names mount (with the values
    it gives as defaults), and the counters its table names are in a real
    mount's stats."""
    text = CLUSTER_DOC.read_text()
    opts = re.findall(r"^\| `(shared\w*)=[A-Z]+` \| (\S+) \|", text, re.M)
    assert [o for o, _ in opts] == ["shared", "shared_lease", "shared_wait"]
    counters = re.findall(r"^\| `(\w+)` \| ", text, re.M)
    assert set(counters) >= {"shared_hits", "shared_misses",
                             "shared_published", "shared_corrupt",
                             "content_hashes"}, counters
    m = mount_factory(workers=1, options=[
        "shared=%s" % (tmp_path / "tier")] + ["%s=%s" % (o, d)
                                              for o, d in opts[1:]])
    stats = m.stats()
    for c in counters:
        assert c in stats, c
    assert (tmp_path / "tier" / "FORMAT").read_text() == "rasterfs-shared 1\n"

"""Fixtures for the cluster tests: a private Slurm cluster, always stopped."""

import atexit

import pytest

import slurm

slurm.install_signal_cleanup()
atexit.register(slurm.stop_all)

# (what, seconds) measured by the tests, shown at the end of the run.
TIMINGS = []

# Reasons of the tests skipped because this machine cannot run a cluster.
_UNAVAILABLE = []


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "cluster: starts a private single-node Slurm cluster "
        "(tests/cluster/slurm.py); needs root, slurm-wlm and munge")
    config.addinivalue_line(
        "markers", "slow: long tests, run by the 'slow' suite "
        "(meson test --suite slow)")


def start_or_skip(cluster):
    """cluster.start(), or skip the test with the machine's reason."""
    try:
        return cluster.start()
    except slurm.SlurmUnavailable as e:
        _UNAVAILABLE.append(str(e))
        pytest.skip("no Slurm cluster on this machine: %s" % e)


@pytest.fixture(scope="session")
def start_cluster():
    """start_or_skip, for a test that starts its own cluster."""
    return start_or_skip


@pytest.fixture(scope="session")
def timings():
    """Append (what, seconds) to have it printed at the end of the run
    (seconds None: the line alone)."""
    return TIMINGS


@pytest.fixture(scope="module")
def cluster():
    """A running cluster shared by a module's tests; yields the SlurmCluster
    (pass cluster.env to sbatch/squeue/scancel, or use its methods)."""
    c = start_or_skip(slurm.SlurmCluster())
    TIMINGS.append(("cluster start (to node idle)", c.start_seconds))
    try:
        yield c
    finally:
        c.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for c in slurm.ACTIVE:
            for name in ("slurmctld", "slurmd"):
                rep.sections.append(("%s log (%s)" % (name, c.log(name)),
                                     slurm._tail(c.log(name), 40)))


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("cluster timings")
        for what, sec in TIMINGS:
            terminalreporter.write_line(
                what if sec is None else "%-40s %6.2f s" % (what, sec))


def pytest_sessionfinish(session, exitstatus):
    # A cluster that could not start must not read as a pass: with nothing
    # failed, exit 77, which meson reports as SKIP (not OK), with the reason
    # in the test log.
    if _UNAVAILABLE and exitstatus == 0:
        print("\ncluster tests skipped: %s" % _UNAVAILABLE[0])
        session.exitstatus = 77

"""One run of the module's playbook through ansible-runner, in a private directory of the
container's tmpfs: the inventory, the settings and secrets as extra variables, the ssh
settings, `--check --diff` for plan and audit; and what came back: whether it succeeded, which
tasks changed (or would change) which host, and what the playbook recorded with `set_stats`
(the `e_record` variable: `{hosts: {NAME: {...}}, section: {...}}`).
"""

import os
import shutil
import sys
import tempfile

import ansible_runner

from contract import Failure
from module_file import MODULE_DIR


class Result:
    """What a playbook run says."""

    def __init__(self, runner):
        self.status = runner.status
        self.rc = runner.rc
        stats = runner.stats or {}
        self.changed = {host: count for host, count in (stats.get("changed") or {}).items() if count}
        self.failed = sorted(set(stats.get("failures") or {}) | set(stats.get("dark") or {}))
        self.changes = []
        self.record = {}
        for event in runner.events:
            data = event.get("event_data") or {}
            if event.get("event") == "runner_on_ok" and (data.get("res") or {}).get("changed"):
                self.changes.append((data.get("host", "?"), data.get("task", "?")))
            if event.get("event") == "playbook_on_stats":
                self.record = (data.get("artifact_data") or {}).get("e_record") or {}

    def host_record(self, name):
        """What the playbook recorded for host `name`."""
        hosts = self.record.get("hosts") or {}
        return hosts.get(name) or {}


def _environment(connection, scratch):
    environment = {
        "HOME": "/tmp",
        "ANSIBLE_LOCAL_TEMP": os.path.join(scratch, "local"),
        "ANSIBLE_ROLES_PATH": os.path.join(MODULE_DIR, "roles"),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_FORCE_COLOR": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_SYSTEM_WARNINGS": "False",
        "ANSIBLE_FORKS": "10",
        "ANSIBLE_TIMEOUT": "15",
        # Ansible's controller polls its workers every millisecond by default: on a busy
        # machine that costs more CPU than the tasks.
        "ANSIBLE_INTERNAL_POLL_INTERVAL": "0.05",
    }
    environment.update(connection.environment())
    # ssh needs the user in the user database; main.py puts one there through nss_wrapper.
    for name in ("LD_PRELOAD", "NSS_WRAPPER_PASSWD", "NSS_WRAPPER_GROUP", "USER", "LOGNAME"):
        if name in os.environ:
            environment[name] = os.environ[name]
    return environment


def run(env, module, inventory, variables, connection, check):
    """Runs the playbook on the inventory; `check` makes it a dry run with `--check --diff`."""
    scratch = tempfile.mkdtemp(prefix="e-ansible-", dir="/tmp")
    private = os.path.join(scratch, "runner")
    os.makedirs(private)
    try:
        # Leave ansible-runner time to stop ansible cleanly before e's deadline.
        timeout = max(30, env.timeout - 15)
        sys.stdout.flush()
        runner = ansible_runner.run(
            private_data_dir=private,
            project_dir=MODULE_DIR,
            playbook=module.playbook,
            inventory=inventory,
            extravars=variables,
            envvars=_environment(connection, scratch),
            cmdline="--check --diff" if check else "--diff",
            timeout=timeout,
            quiet=False,
            rotate_artifacts=1,
        )
        sys.stdout.flush()
        result = Result(runner)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if result.status == "timeout":
        raise Failure(f"the playbook did not end within {timeout} s", "give the command a longer `timeout:` in the repository")
    if result.status != "successful":
        where = f" on {', '.join(result.failed)}" if result.failed else ""
        mode = "the dry run (--check) of the playbook" if check else "the playbook"
        raise Failure(f"{mode} failed{where} (ansible-runner: {result.status}, exit {result.rc})", "its output above says which task failed and why")
    return result

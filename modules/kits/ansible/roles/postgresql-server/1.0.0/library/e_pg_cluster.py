#!/usr/bin/python3
"""e_pg_cluster: one PostgreSQL cluster of Debian's postgresql-common (pg_createcluster,
pg_ctlcluster, pg_dropcluster): present, started, restarted or absent, in check mode too.
Returns `server_version` (such as `15.14`) when the server is installed."""

import os
import re
import subprocess

from ansible.module_utils.basic import AnsibleModule


def status(version, name):
    """`online`, `down`, or None when there is no such cluster."""
    if not os.path.exists("/usr/bin/pg_lsclusters"):
        return None
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == version and fields[1] == name:
            return "online" if fields[3].startswith("online") else "down"
    return None


def server_version(version):
    binary = f"/usr/lib/postgresql/{version}/bin/postgres"
    if not os.path.exists(binary):
        return ""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"\(PostgreSQL\) ([0-9][0-9.]*)", out.stdout)
    return match.group(1) if match else ""


def main():
    module = AnsibleModule(
        argument_spec={
            "version": {"type": "str", "required": True},
            "name": {"type": "str", "default": "main"},
            "port": {"type": "int", "default": 5432},
            "state": {"type": "str", "default": "started", "choices": ["present", "started", "restarted", "absent"]},
        },
        supports_check_mode=True,
    )
    version, name, port, state = (module.params[k] for k in ("version", "name", "port", "state"))
    if not re.match(r"^[0-9]+$", version) or not re.match(r"^[a-z0-9_-]+$", name):
        module.fail_json(msg=f"invalid cluster `{version}/{name}`")
    current = status(version, name)
    commands = []
    if state == "absent":
        if current is not None:
            commands.append(["pg_dropcluster", "--stop", version, name])
    else:
        if current is None:
            commands.append(["pg_createcluster", "--port", str(port), "--locale", "C.UTF-8", version, name])
        if state == "started" and current != "online":
            commands.append(["pg_ctlcluster", version, name, "start"])
        if state == "restarted":
            commands.append(["pg_ctlcluster", version, name, "restart" if current == "online" else "start"])
    if not module.check_mode:
        for command in commands:
            out = subprocess.run(command, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                module.fail_json(msg=f"`{' '.join(command)}` failed: {out.stderr.strip() or out.stdout.strip()}", rc=out.returncode)
    module.exit_json(
        changed=bool(commands),
        commands=[" ".join(c) for c in commands],
        server_version=server_version(version),
        status=status(version, name) if not module.check_mode else current,
    )


if __name__ == "__main__":
    main()

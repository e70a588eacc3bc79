"""The hosts a playbook runs on: read from host specs (`NAME=USER@ADDRESS:PORT,VAR=VALUE`),
from the config, or from the nodes a required module recorded in the state; checked; and
turned into what ssh and Ansible need: the private key from e's secret file (copied to the
container's tmpfs, never to /shared), a known_hosts file of the hosts' recorded keys, and the
inventory.
"""

import os
import re
import subprocess

from contract import Failure

# The keys of a host; host settings and `vars` come beside them.
BASE = ("name", "address", "sshPort", "sshUser", "hostKey")
_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)=(?P<user>[A-Za-z0-9_][A-Za-z0-9_.-]*)@(?P<address>[A-Za-z0-9.:-]+):(?P<port>[0-9]{1,5})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEY = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521|ssh-rsa) [A-Za-z0-9+/=]+$")
SECRETS_DIR = os.environ.get("E_SECRETS_DIR", "/run/secrets")


def parse_spec(text):
    """One host from `NAME=USER@ADDRESS:PORT[,VAR=VALUE...]`."""
    head, *assignments = text.split(",")
    match = _SPEC.match(head)
    if not match:
        raise Failure(
            f"invalid host `{text}`",
            "write a host as NAME=USER@ADDRESS:PORT, optionally followed by ,VAR=VALUE host variables: "
            "`host-1=root@10.0.0.5:22,postgresql_port=5432`",
        )
    host = {
        "name": match["name"],
        "address": match["address"],
        "sshPort": int(match["port"]),
        "sshUser": match["user"],
    }
    variables = {}
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        if not equals or not _VAR.match(name):
            raise Failure(f"invalid host variable `{assignment}` of `{head}`", "write it as VAR=VALUE")
        variables[name] = value
    if variables:
        host["vars"] = variables
    return host


def check(hosts, where, extra_keys, need_key):
    """Checks a list of hosts read from `where`; returns it. `extra_keys` may appear beside the
    base keys; `need_key` asks every host for its recorded `hostKey`."""

    def bad(what):
        return Failure(f"{where}: {what}", "run `init` again to write the hosts from the state")

    if not isinstance(hosts, list) or not hosts:
        raise bad("`hosts` must be a list of at least one host")
    names = set()
    endpoints = set()
    for index, host in enumerate(hosts):
        if not isinstance(host, dict):
            raise bad(f"host {index} is not a mapping")
        unknown = sorted(set(host) - set(BASE) - set(extra_keys))
        if unknown:
            raise bad(f"host {index} has an unknown key `{unknown[0]}`")
        for key in ("name", "address", "sshPort", "sshUser"):
            if key not in host:
                raise bad(f"host {index} has no `{key}`")
        if not _NAME.match(str(host["name"])):
            raise bad(f"host {index}: `{host['name']}` is not a host name (letters, digits, `-`, `_`, `.`)")
        if str(host["name"]) in names:
            raise bad(f"two hosts are named `{host['name']}`")
        names.add(str(host["name"]))
        port = host["sshPort"]
        if not isinstance(port, int) or not 0 < port < 65536:
            raise bad(f"host `{host['name']}`: `sshPort` must be a port number, not `{port}`")
        endpoint = (str(host["address"]), port)
        if endpoint in endpoints:
            raise bad(f"host `{host['name']}`: another host has the address {endpoint[0]} and port {port}")
        endpoints.add(endpoint)
        key = host.get("hostKey")
        if key is not None and not _KEY.match(str(key)):
            raise bad(f"host `{host['name']}`: `hostKey` must be `TYPE BASE64` as ssh-keyscan prints it")
        if need_key and key is None:
            raise bad(f"host `{host['name']}` has no recorded `hostKey`")
    return hosts


def scan_key(host, timeout):
    """The host's ed25519 key, as `ssh-keyscan` sees it now (trust on first use)."""
    try:
        out = subprocess.run(
            ["ssh-keyscan", "-T", str(max(1, min(timeout, 10))), "-t", "ed25519", "-p", str(host["sshPort"]), str(host["address"])],
            capture_output=True, text=True, timeout=timeout + 5, check=False,
        )
    except subprocess.TimeoutExpired:
        out = None
    for line in (out.stdout if out else "").splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            return f"{parts[1]} {parts[2]}"
    raise Failure(
        f"host `{host['name']}` ({host['sshUser']}@{host['address']}:{host['sshPort']}) is not reachable over ssh",
        "check that the host runs sshd on that address and port and that this machine reaches it",
    )


class Connection:
    """The files ssh needs in a private directory of the container's tmpfs."""

    def __init__(self, workdir, secret, hosts):
        self.workdir = workdir
        os.makedirs(workdir, mode=0o700, exist_ok=True)
        self.key_file = os.path.join(workdir, "id")
        path = os.path.join(SECRETS_DIR, secret)
        try:
            with open(path, encoding="utf-8") as file:
                key = file.read()
        except OSError:
            raise Failure(
                f"no SSH private key: the secret `{secret}` is not given to this command",
                f"list `{secret}` in the command's `secrets:` in the repository and give its value "
                "in the secrets file (`e --secrets FILE`); the key is never read from /shared",
            ) from None
        if not key.endswith("\n"):
            key += "\n"
        descriptor = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(key)
        self.known_hosts = os.path.join(workdir, "known_hosts")
        with open(self.known_hosts, "w", encoding="utf-8") as file:
            for host in hosts:
                address = host["address"] if host["sshPort"] == 22 else f"[{host['address']}]:{host['sshPort']}"
                file.write(f"{address} {host['hostKey']}\n")

    def environment(self):
        """Ansible's settings for ssh: this key, these host keys only."""
        options = " ".join([
            f"-o UserKnownHostsFile={self.known_hosts}",
            "-o StrictHostKeyChecking=yes",
            "-o IdentitiesOnly=yes",
            "-o BatchMode=yes",
            "-o ControlMaster=auto",
            "-o ControlPersist=60s",
            "-o ConnectTimeout=10",
        ])
        return {
            "ANSIBLE_PRIVATE_KEY_FILE": self.key_file,
            "ANSIBLE_SSH_ARGS": options,
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": os.path.join(self.workdir, "cp"),
        }


def inventory(hosts, host_settings):
    """The YAML inventory: every host in group `targets`, with its settings as host variables."""
    entries = {}
    for host in hosts:
        variables = {
            "ansible_host": str(host["address"]),
            "ansible_port": host["sshPort"],
            "ansible_user": str(host["sshUser"]),
            "e_node": {key: host[key] for key in BASE if key in host},
            # Debian's; a host variable `ansible_python_interpreter` (onprem's `vars`) says
            # otherwise. Naming it spares every run the interpreter discovery.
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        for name in host_settings:
            if name in host:
                variables[name] = host[name]
        for name, value in (host.get("vars") or {}).items():
            if name == "ansible_python_interpreter" or name not in variables:
                variables[name] = value
        entries[str(host["name"])] = variables
    return {"all": {"children": {"targets": {"hosts": entries}}}}

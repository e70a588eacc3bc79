#!/usr/bin/python3
"""e_pg_database: a database owned by a login role with a password, on a local cluster, in
check mode too. The password is checked against the server's SCRAM-SHA-256 verifier, so an
unchanged password is no change; SQL goes to psql on stdin, never on a command line."""

import base64
import hashlib
import hmac
import re
import subprocess

from ansible.module_utils.basic import AnsibleModule

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def psql(module, port, sql):
    out = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-p", str(port), "-d", "postgres"],
        input=sql, capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        module.fail_json(msg=f"psql on port {port} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def literal(text):
    return "'" + text.replace("'", "''") + "'"


def scram_matches(verifier, password):
    match = re.match(r"^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$", verifier or "")
    if not match:
        return False
    iterations, salt, stored_key = int(match.group(1)), base64.b64decode(match.group(2)), base64.b64decode(match.group(3))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)


def main():
    module = AnsibleModule(
        argument_spec={
            "port": {"type": "int", "default": 5432},
            "database": {"type": "str", "required": True},
            "owner": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
        },
        supports_check_mode=True,
    )
    port, database, owner, password = (module.params[k] for k in ("port", "database", "owner", "password"))
    for name in (database, owner):
        if not IDENTIFIER.match(name):
            module.fail_json(msg=f"`{name}` is not a plain identifier (lowercase letters, digits, `_`)")
    if not password:
        module.fail_json(msg="the owner's password is empty")
    changes = []
    role = psql(module, port, f"SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = {literal(owner)};")
    exists = psql(module, port, f"SELECT count(*) FROM pg_roles WHERE rolname = {literal(owner)};") == "1"
    if not exists:
        changes.append((f"create the role {owner}", f"CREATE ROLE {owner} LOGIN PASSWORD {literal(password)};"))
    elif not scram_matches(role, password):
        changes.append((f"set the password of {owner}", f"ALTER ROLE {owner} LOGIN PASSWORD {literal(password)};"))
    current_owner = psql(module, port, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = {literal(database)};")
    if not current_owner:
        changes.append((f"create the database {database}", f"CREATE DATABASE {database} OWNER {owner};"))
    elif current_owner != owner:
        changes.append((f"give the database {database} to {owner}", f"ALTER DATABASE {database} OWNER TO {owner};"))
    if not module.check_mode:
        for _, sql in changes:
            psql(module, port, sql)
    module.exit_json(changed=bool(changes), changes=[what for what, _ in changes])


if __name__ == "__main__":
    main()

#!/bin/sh
# Starts the test host's sshd in the foreground on 127.0.0.1:$SSH_PORT, for root with the key
# $AUTHORIZED_KEY only, with a host key of its own made now (the image's are shared by every
# container of it).
set -eu
: "${SSH_PORT:?SSH_PORT is the port sshd listens on}"
: "${AUTHORIZED_KEY:?AUTHORIZED_KEY is the public key root logs in with}"
mkdir -p /root/.ssh /run/sshd
chmod 700 /root/.ssh
printf '%s\n' "$AUTHORIZED_KEY" >/root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
rm -f /etc/ssh/e_host_ed25519_key /etc/ssh/e_host_ed25519_key.pub
ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/e_host_ed25519_key
exec /usr/sbin/sshd -D -e -p "$SSH_PORT" \
    -o ListenAddress=127.0.0.1 \
    -o HostKey=/etc/ssh/e_host_ed25519_key \
    -o PasswordAuthentication=no \
    -o KbdInteractiveAuthentication=no \
    -o UsePAM=no \
    -o PermitRootLogin=prohibit-password

# serve.sh ADDRESS:PORT: serves /srv (read-only) over HTTP in the foreground until stopped.
#
# /srv is the store of `e import --store`: files/<sha256>/<name> and
# debian/<release>/{Packages,Release,*.deb}, so a cluster host uses
#   deb [trusted=yes] http://ADDRESS:PORT/debian/<release> ./
# The listening address and port come from `e serve --listen` (default 0.0.0.0:8080).
set -eu
listen=${1:-0.0.0.0:8080}
[ -d /srv ] || { echo "error: no store at /srv" >&2; exit 1; }
echo "serving /srv on http://$listen/" >&2
exec httpd -f -v -p "$listen" -h /srv

#!/usr/bin/env bash
# Makes Debian's Request Tracker 5 ready for the tests on loopback and prints its REST2 URL.
# Installs request-tracker5, rt5-db-sqlite and rt5-standalone when missing (as root), writes
# RT's SLA configuration from the saas library (`tier2 sla rt-config`), sets root's password,
# turns SLAs on for the General queue, creates the ticket custom fields the connector uses
# (`tier2 rt custom-fields`, applied to every queue), and (re)starts `rt-server --port N` so the
# configuration applies. Safe to run again. Prints nothing and exits 1 when it cannot.
# Usage: scripts/test-rt.sh [PYTHON]   (PYTHON: the venv's python, default .venv/bin/python)
set -euo pipefail
PY="${1:-.venv/bin/python}"
PORT="${TIER2_RT_PORT:-8089}"
PASSWORD="${TIER2_RT_PASSWORD:-tier2-rt}"
SERVER=/usr/share/request-tracker5/libexec/rt-server
LIB=/usr/share/request-tracker5/lib
CONF=/etc/request-tracker5/RT_SiteConfig.d/99-tier2.pm
if [ ! -x "$SERVER" ]; then
  [ "$(id -u)" = 0 ] || exit 1
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends request-tracker5 rt5-db-sqlite rt5-standalone; } >&2
fi
[ -w "$(dirname "$CONF")" ] || exit 1
{
  echo "Set(\$WebPath, '');"
  echo "Set(\$WebDomain, '127.0.0.1');"
  echo "Set(\$WebPort, $PORT);"
  echo "Set(\$WebBaseURL, 'http://127.0.0.1:$PORT');"
  echo "Set(\$LogToSTDERR, 'error');"
  "$PY" -m tier2 sla rt-config --library saas --years 2024-2029
} > "$CONF.new"
mv "$CONF.new" "$CONF"
FIELDS="$(mktemp)"
trap 'rm -f "$FIELDS"' EXIT
"$PY" -m tier2 rt custom-fields > "$FIELDS"
# a server still running (a request it is still working on) would hold RT's database
pkill -f "rt-server --port $PORT" >/dev/null 2>&1 || true
for _ in $(seq 1 20); do pgrep -f "rt-server --port $PORT" >/dev/null || break; sleep 0.25; done
pkill -9 -f "rt-server --port $PORT" >/dev/null 2>&1 || true
perl -I"$LIB" -e '
  use strict; use warnings;
  use RT; RT::LoadConfig(); RT::Init();
  my $user = RT::User->new(RT->SystemUser); $user->Load("root");
  my ($ok, $msg) = $user->SetPassword($ARGV[0]); die "root password: $msg\n" unless $ok;
  my $queue = RT::Queue->new(RT->SystemUser); $queue->Load("General");
  if ($queue->SLADisabled) { ($ok, $msg) = $queue->SetSLADisabled(0); die "queue: $msg\n" unless $ok; }
  open(my $fields, "<", $ARGV[1]) or die "custom fields: $!\n";
  while (my $line = <$fields>) {
    chomp $line; my ($name, $type) = split /\t/, $line;
    my ($kind, $max) = $type =~ /^(\w+?)(Single|Multiple)$/ or die "custom field type: $type\n";
    my $cf = RT::CustomField->new(RT->SystemUser);
    $cf->LoadByName(Name => $name, LookupType => RT::Ticket->CustomFieldLookupType);
    unless ($cf->id) {
      ($ok, $msg) = $cf->Create(Name => $name, Type => $kind, MaxValues => ($max eq "Single" ? 1 : 0),
                                LookupType => RT::Ticket->CustomFieldLookupType);
      die "custom field $name: $msg\n" unless $ok;
    }
    unless ($cf->IsGlobal) {
      ($ok, $msg) = $cf->AddToObject(RT::Queue->new(RT->SystemUser));
      die "custom field $name: $msg\n" unless $ok;
    }
  }
' "$PASSWORD" "$FIELDS" >&2
nohup "$SERVER" --port "$PORT" >/tmp/tier2-rt-server.log 2>&1 &
URL="http://127.0.0.1:$PORT/REST/2.0/"
for _ in $(seq 1 120); do
  if curl -fsS -u "root:$PASSWORD" "${URL}queues/all" >/dev/null 2>&1; then
    echo "$URL"
    exit 0
  fi
  sleep 0.5
done
echo "rt-server did not answer on $URL (see /tmp/tier2-rt-server.log)" >&2
exit 1

"""Request Tracker's Perl API, for what its REST2 no longer takes: a ticket's `Created`.

RT 5.0.3+dfsg-3~deb12u7 (a Debian security update) drops `Created` from REST2 request bodies,
so the tests that need tickets dated in the past create or backdate them the way an importer
does, through `RT::Ticket` on the same database the test's rt-server uses (scripts/test-rt.sh).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

RT_LIB = "/usr/share/request-tracker5/lib"

_SCRIPT = r"""
use strict; use warnings; use JSON;
use RT; RT::LoadConfig(); RT::Init();
$| = 1;
while (my $line = <STDIN>) {
    my $spec = decode_json($line);
    my $ticket = RT::Ticket->new(RT->SystemUser);
    if (my $id = $spec->{backdate}) {
        $ticket->Load($id) or die "ticket $id: not found\n";
        my ($ok, $msg) = $ticket->__Set(Field => 'Created', Value => $spec->{created});
        die "ticket $id: $msg\n" unless $ok;
        print "$id\n";
    } else {
        my ($id, undef, $msg) = $ticket->Create(%{ $spec->{create} });
        die "create: $msg\n" unless $id;
        print "$id\n";
    }
}
"""


def _perl(specs: Sequence[Mapping[str, Any]]) -> list[str]:
    done = subprocess.run(
        ["perl", "-I", RT_LIB, "-e", _SCRIPT],
        input="".join(json.dumps(s) + "\n" for s in specs),
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def create_tickets(fields: Sequence[Mapping[str, Any]]) -> list[str]:
    """Create tickets with RT::Ticket->Create (which takes `Created`, 'YYYY-MM-DD HH:MM:SS'
    UTC, as an import does); RT runs its scrips, the SLA's due time included. Their ids."""
    return _perl([{"create": f} for f in fields])


def backdate(ticket_id: str, created: str) -> None:
    """Set a ticket's `Created` ('YYYY-MM-DD HH:MM:SS' UTC)."""
    _perl([{"backdate": ticket_id, "created": created}])

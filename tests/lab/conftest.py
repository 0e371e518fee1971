"""One running lab for the session: quick scenario at 900x (a 15-minute poll every real second).

900x keeps the 7.5-minute distance between the poll grid and any scenario change at half a real
second, so a poll delayed by a busy shared machine still lands in the right scenario slot.
"""

from lab.testing import lab_fixture

lab = lab_fixture("quick", speed=900.0)

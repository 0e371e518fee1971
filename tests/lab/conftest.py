"""One running lab (quick scenario, 1800x: a 15-minute poll every half second) for the session."""

from lab.testing import lab_fixture

lab = lab_fixture("quick", speed=1800.0)

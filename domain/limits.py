"""Every limit in one place: what protects a person, and what protects the server.

Rate-limit strings use Flask-Limiter's notation ("N per period"). What protects a person (mail
to an address, guesses at a token) is keyed by that person or token; what protects the server
is a per-address budget sized for a whole venue behind one Wi-Fi address.
"""

from __future__ import annotations

# Failed token lookups (badge, poster, email links): only a 404 counts, so opening real
# links never uses the budget.
FAILED_LOOKUPS = "30 per minute"
# Check-ins per client address: generous enough for a whole venue behind one address.
CHECKINS_PER_ADDRESS = "60 per minute"
# Sign-in link requests per client address.
SIGNIN_REQUESTS_PER_ADDRESS = "5 per 10 minutes"
# Organiser accounts.
SIGNUPS_PER_ADDRESS = "10 per hour"
LOGINS_PER_ADDRESS = "10 per minute"

# ---- when the database can't be written (read-only, full, locked, unreachable)
# Seconds a client is asked to wait (Retry-After) before trying again.
DATABASE_RETRY_AFTER_SECONDS = 5

# ---- when the poster's check-in form is open
# Minutes before an event's start that check-in opens, and after its end that it closes
# (each event can change them; these are the defaults and the choices offered).
CHECKIN_OPENS_MINUTES_BEFORE = 120
CHECKIN_CLOSES_MINUTES_AFTER = 360
CHECKIN_OPENS_CHOICES = (0, 30, 60, 120, 240, 480, 1440)
CHECKIN_CLOSES_CHOICES = (0, 60, 120, 360, 720, 1440, 2880)

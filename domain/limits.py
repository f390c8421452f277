"""Every limit in one place: what protects a person, and what protects the server.

Rate-limit strings use Flask-Limiter's notation ("N per period"). What protects a person (mail
to an address, guesses at a token) is keyed by that person or token; what protects the server
is a per-address budget sized for a whole venue behind one Wi-Fi address.
"""

from __future__ import annotations

from datetime import timedelta

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

# ---------------------------------------------------------------- SendGrid's event webhook
# Every other request is capped by MAX_CONTENT_LENGTH (64 KiB). SendGrid batches events for up
# to 30 seconds or about 768 KB per POST, whichever comes first; the webhook takes several
# times that, so a batch of unusually long events is never refused.
WEBHOOK_MAX_BODY_BYTES = 4 * 1024 * 1024
# A signed post whose signing time is further than this from now, either way, is refused as a
# replay; SendGrid signs each attempt, retries included, when it sends it.
WEBHOOK_TIMESTAMP_TOLERANCE = timedelta(minutes=10)

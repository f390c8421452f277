"""Every limit in one place: what protects a person, and what protects the server.

A venue is one Wi-Fi address for the whole room, with 10 to 17 arrivals a second at the door,
and phones passed from friend to friend. So:

- What protects a person (their inbox, their account, their badge) is keyed by that person:
  the address typed into the form, or the device, a random id a phone keeps in its signed
  session cookie (blueprints/device.py) and keeps when it starts over for someone new. A
  phone passed among a handful of friends is one device with a handful of people; a script
  that keeps its cookies is one device too.
- What protects the server is a per-address budget sized for a full venue behind one
  address, so a crowd is never refused.
- Some limits on mail are rules of the data, not of traffic, and are enforced in the
  database in the same transaction as the change that would cause the mail (see the
  "enforced in the database" block below); they hold even with the rate limiter off.

A request that carries no session cookie at all has no device, so it is counted as the
device of its address: every cookieless client behind one address shares one device budget.
Real phones always carry a cookie by the time they post (opening the poster or /me sets it,
and the form's CSRF token lives in the same cookie). A script that throws its cookies away
and fetches a fresh form for every stranger cannot be told apart from a crowd arriving at
the door; it is bounded by the per-address check-in budget (CHECKINS_PER_ADDRESS), by one
confirmation mail per address a day (CONFIRMATION_EVERY), and by every address on the
suppression list never being mailed again. Nothing but a confirmation link goes to an
address until its owner confirms it.

Failed token lookups never lock a room out: a device past its budget is refused every
lookup (its own badge aside), but an address past its budget is refused only the lookups
that open nothing, and a request without a device (a phone's first scan of the poster,
before it has a cookie) is counted by its address alone.

Rate-limit strings read "N per [M] period" (blueprints/ratelimit.py). All the limits a
request meets are asked in one trip to the counter storage (Redis in production), before
the view runs; a second trip is made only when the outcome changes a count: a token that
opened nothing is counted as a failed lookup, and a check-in POST that checked no one new
in gives the budgets it took back. So a phone's check-in POST makes one trip (two for a
form error or a second tap), opening a token page one (two when the token opens
nothing; none on a phone's first scan), a sign-in link request one, a log-in one, and
pages without limits none. A phone opening its own badge (or refreshing it) makes none:
the badge token it names is one its signed cookie holds, so it is no guess. There are no
rate-limit headers; a 429 says Retry-After, the limit's window, read from the limit itself.
"""

from __future__ import annotations

from datetime import timedelta

# ---------------------------------------------------------------- what protects a person
# Failed token lookups (poster, badge, email links: every route taking a token), per device,
# shared by all token routes. Only a 404 counts, so opening real links never uses it.
FAILED_LOOKUPS_PER_DEVICE = "30 per minute"
# New people a device checks in: a phone passed among a handful of friends. A device's
# check-ins cause at most one confirmation mail each, so this also caps the confirmation
# mail one device can cause. Form errors and repeated posts for the same person don't count.
CHECKINS_PER_DEVICE = "6 per hour"
# Sign-in link requests per address typed (any device, any client address), and per device.
SIGNIN_REQUESTS_PER_EMAIL = "5 per hour"
SIGNIN_REQUESTS_PER_DEVICE = "10 per hour"
# Organiser log-in attempts per account (the address typed), from any client address.
LOGINS_PER_ACCOUNT = "10 per 10 minutes"

# ---------------------------------------------------------------- what protects the server
# Per client address, sized for a whole venue behind one Wi-Fi address: a door peak of 17
# arrivals a second is 1,020 a minute. Check-ins count new people only, as per device.
CHECKINS_PER_ADDRESS = "1200 per minute"
FAILED_LOOKUPS_PER_ADDRESS = "600 per minute"
SIGNIN_REQUESTS_PER_ADDRESS = "300 per minute"
LOGINS_PER_ADDRESS = "60 per minute"
# Organiser accounts are not made at the door.
SIGNUPS_PER_ADDRESS = "10 per hour"

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

# ---------------------------------------------------------------- enforced in the database
# These are checked by domain/followups.py and domain/connections.py inside the transaction
# that would cause the mail or the request, not by the rate limiter.
# One confirmation mail per address a day, however often it is typed.
CONFIRMATION_EVERY = timedelta(hours=24)
# Confirmation mails an address gets in all while it is unconfirmed: someone who keeps typing
# a stranger's address (or ticking follow-ups on a badge holding it) can't mail them daily.
CONFIRMATIONS_UNCONFIRMED = 3
# One sign-in link per address and event every ten minutes.
SIGN_IN_EVERY = timedelta(minutes=10)
# Sign-in links keyed by the person, however many posters or network addresses they are
# asked for from: a confirmed address gets this many a day...
SIGN_IN_LINKS_PER_DAY = 5
# ...and an address never proved to be the person's (only typed into a form) this many in
# all, until it is confirmed.
SIGN_IN_LINKS_UNCONFIRMED = 1
# "The morning after" an event is the first 09:00 at least this long after it ends.
MORNING_AFTER_REST = timedelta(hours=4)
# Sign-in links are counted over this window for SIGN_IN_LINKS_PER_DAY.
SIGN_IN_CAP_WINDOW = timedelta(hours=24)
# How long the one-time links in emails work.
# "me": the link in every follow-up that opens the person's /me, once.
LINK_LIFETIME = {
    "confirm": timedelta(hours=48),
    "signin": timedelta(minutes=30),
    "me": timedelta(days=7),
}
# How long an invitation to join an event's team works, and how many an event's owner may
# send in a day (each is an email to an address nobody confirmed).
INVITATION_LIFETIME = timedelta(days=7)
INVITATIONS_PER_DAY = 20
INVITATIONS_WINDOW = timedelta(hours=24)
# Connection requests a person sends in an hour.
CONNECTION_REQUESTS_PER_HOUR = 30
CONNECTION_REQUESTS_WINDOW = timedelta(hours=1)

# ---------------------------------------------------------------- SendGrid's event webhook
# Every other request is capped by MAX_CONTENT_LENGTH (64 KiB). SendGrid batches events for up
# to 30 seconds or about 768 KB per POST, whichever comes first; the webhook takes several
# times that, so a batch of unusually long events is never refused.
WEBHOOK_MAX_BODY_BYTES = 4 * 1024 * 1024
# A signed post whose signing time is further than this from now, either way, is refused as a
# replay; SendGrid signs each attempt, retries included, when it sends it.
WEBHOOK_TIMESTAMP_TOLERANCE = timedelta(minutes=10)

# ---------------------------------------------------------------- what a person may type
# The longest value each form field takes; the columns hold the same, so changing one of
# these needs a migration too.
NAME_MAX = 80
# A name as searched (folded: "ß" becomes "ss", a ligature two letters) may be longer.
NAME_KEY_MAX = 4 * NAME_MAX
EMAIL_MAX = 254
LINE_MAX = 160  # one line of a profile ("About me", "Happy to talk about") or an event's venue
DESCRIPTION_MAX = 2000
TIMEZONE_MAX = 64
LINK_MAX = 200
INTEREST_MAX = 40
NOTE_MAX = 280  # a private note about a connection
# The most typed into the interests box (comma-separated) and the links box (one a line),
# before each interest and link is checked on its own.
INTERESTS_TYPED_MAX = 500
LINKS_TYPED_MAX = 700
# The most accents (combining marks) one letter of an interest carries: enough for any
# language, too few to stack a tag into an unreadable smear.
INTEREST_MARKS_MAX = 3
# The same for any other typed text (names, notes, descriptions): a stack of accents
# overflows its line on a badge, in a list or in an email.
TEXT_MARKS_MAX = INTEREST_MARKS_MAX
# How many interests and links one profile holds.
MAX_INTERESTS = 10
MAX_LINKS = 3
# The shortest and longest organiser password accepted.
PASSWORD_MIN = 10
PASSWORD_MAX = 256
# An organiser's search of their attendee list.
SEARCH_MAX = 100
# An event's dates may be this many years from now, either way: further is a typo.
EVENT_YEARS_AROUND_NOW = 10

# A phone's session cookie lives 90 days from when it was last sent (app.py); one that has
# not changed is sent again at most this often, not with every page (it is signed anew each
# time it is sent, and every page would carry it).
SESSION_COOKIE_RESENT_AFTER_SECONDS = 60 * 60 * 24

# ---------------------------------------------------------------- what a page shows
# Seconds between refreshes of a live page (my badge's requests, an organiser's attendees).
LIVE_REFRESH_SECONDS = 5
# Seconds between refreshes of the people a badge page suggests meeting. They change with
# every arrival who shares an interest (at a conference door, for everyone, all the time),
# so they refresh more slowly than the person's own requests and connections: 2,000 phones
# then ask for a new list about 70 times a second, not 400.
PEOPLE_REFRESH_SECONDS = 30
# People suggested on a badge page, most interests shared first...
SUGGESTIONS = 8
# ...chosen among this many of the latest arrivals who show their interests, so a badge
# costs the same at a conference as at a meetup.
SUGGESTION_CANDIDATES = 300
# Interests offered as one-tap choices on a profile form: the event's most popular.
SUGGESTED_INTERESTS = 12
# The door desk's count of people who "just arrived".
DOOR_RECENT = timedelta(minutes=10)
# Name badges on one printed sheet (2 across, 4 down on A4 or US Letter), and the interests
# each shows under the name.
BADGES_PER_SHEET = 8
BADGE_INTERESTS = 3
# Seconds a server process reuses what it looked up for a poster (the event, the interests
# its form offers) before asking the database again; a change shows in other processes
# within this time, in the process that made it at once.
LOOKUP_CACHE_SECONDS = 5
# Lookups one process keeps at most (it forgets them all when full).
LOOKUP_CACHE_SIZE = 10_000
# Interest ids by name one process keeps at most, apart from the lookups above.
INTEREST_IDS_CACHE_SIZE = 5_000
# Attendees the organiser's page shows at a time, latest arrival first.
ATTENDEES_PAGE = 50
# Badges (one per event) one phone remembers in its session cookie; the oldest is forgotten first.
MAX_REMEMBERED_BADGES = 20

# ---------------------------------------------------------------- sending the outbox
# How long a worker holds the messages it claimed before another worker may take them.
LEASE = timedelta(minutes=5)
# A send whose outcome is unknown (timeout, or a worker that vanished mid-send) is settled
# this much later, giving SendGrid's webhook time to say whether it got through.
RECONCILE_AFTER = timedelta(minutes=15)
# A retry waits a random time up to BACKOFF_BASE_SECONDS * 2**attempts, at most
# BACKOFF_CAP_SECONDS.
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
# Tries a message gets before it fails for good.
MAX_ATTEMPTS = 8
# How long SendGrid keeps retrying a webhook post: an uncertain send waits no longer for news.
WEBHOOK_RETRY_WINDOW = timedelta(hours=24)
# How long sending pauses when the email service refuses our key or sender.
PAUSE_AFTER_AUTH_ERROR = timedelta(minutes=5)
# How long to wait after the email service says "too many" when it doesn't say how long.
DEFAULT_THROTTLE = timedelta(seconds=30)
# Random seconds added to that wait, so workers don't all come back at once.
RATE_LIMIT_JITTER_SECONDS = 2.0

# ---------------------------------------------------------------- an event's ending and after
# An organiser's thank-you note, printed inside every digest of the event.
THANK_YOU_MAX = 600
# Days after an event ends before its attendee data is purged (what a person confirmed stays
# theirs); the organiser picks one of the choices per event.
RETENTION_DAYS = 90
RETENTION_CHOICES = (30, 90, 180, 365)
# Emails listed on one page of an event's emails page.
EMAILS_PAGE_SIZE = 200

# ---------------------------------------------------------------- pictures of the room
# Arrivals are counted in bins this long, in the event's time zone.
ARRIVALS_BIN = timedelta(minutes=5)
# Seconds between refreshes of the pictures on the event page (not the attendee table's pace:
# a picture of the room changes slowly and costs more to draw).
PICTURES_REFRESH_SECONDS = 60
# Interest clusters drawn in their own colour in the network; the rest share one grey.
NETWORK_CLUSTERS = 8
# Shared interests listed as having led to connections.
TOP_SHARED_INTERESTS = 8
# People suggested to introduce each person who met no one to.
INTRODUCTIONS_EACH = 3
# People without a connection listed by name (the count is always exact).
UNCONNECTED_LISTED = 100
# Arrival bins drawn at most; a longer event's bins widen (10, 15, 30 minutes, ...) to fit.
ARRIVALS_MAX_BINS = 288

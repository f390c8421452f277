"""The WTForms forms; every one carries a CSRF token through Flask-WTF."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import request
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from domain import limits
from domain.checkin import Profile
from domain.events import is_timezone, local_time
from domain.interest_keys import interest_key
from domain.limits import (
    DESCRIPTION_MAX,
    EMAIL_MAX,
    EVENT_YEARS_AROUND_NOW,
    INTERESTS_TYPED_MAX,
    LINE_MAX,
    LINKS_TYPED_MAX,
    MAX_INTERESTS,
    MAX_LINKS,
    NAME_MAX,
    NOTE_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    TIMEZONE_MAX,
)
from domain.models import PROFILE_FIELDS, Attendance, Community, Event, Person
from domain.profile import (
    ProfileError,
    has_control_characters,
    most_marks_on_a_letter,
    normalise_interests,
    normalise_links,
    shows_nothing,
    split_interests,
    without_direction_controls,
)

SHOWS_NOTHING_MESSAGE = "Please type something that shows: letters, digits or symbols."
MARKS_MESSAGE = f"Please use at most {limits.TEXT_MARKS_MAX} accents on one letter."


def single_line(form: FlaskForm, field: Any) -> None:
    """Refuse control characters, line breaks, text that shows nothing and stacks of accents
    in a one-line field."""
    if field.data and has_control_characters(field.data):
        raise ValidationError("Please use plain text on one line, without control characters.")
    _shows_legibly(field.data)


def multi_line(form: FlaskForm, field: Any) -> None:
    """Refuse control characters other than line breaks and tabs, text that shows nothing
    and stacks of accents."""
    if field.data and has_control_characters(field.data, allow_newlines=True):
        raise ValidationError("Please use plain text without control characters.")
    _shows_legibly(field.data)


def _shows_legibly(text: str | None) -> None:
    if text and shows_nothing(text):
        raise ValidationError(SHOWS_NOTHING_MESSAGE)
    if text and most_marks_on_a_letter(text) > limits.TEXT_MARKS_MAX:
        raise ValidationError(MARKS_MESSAGE)


def _tidy(value: Any) -> Any:
    """Trim typed text and drop direction overrides, which could make it read otherwise."""
    return without_direction_controls(value).strip() if isinstance(value, str) else value


SUBMIT_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Form(FlaskForm):
    """A form filled in by a browser: only its url-encoded or multipart fields are its data."""

    class Meta:
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            # Flask-WTF would take a JSON body (any JSON: a list, a number) or an uploaded
            # file as field values; no page here sends either, and such values break the
            # validators, so a submission's data is its form fields alone.
            if request.method in SUBMIT_METHODS and (request.is_json or request.files):
                formdata = request.form
            return super().wrap_formdata(form, formdata)  # type: ignore[misc]


def _length(maximum: int, what: str) -> Length:
    return Length(max=maximum, message=f"Keep {what} to {maximum} characters or fewer.")


def _attendee_email(description: str = "") -> EmailField:
    return EmailField(
        "Email",
        filters=[_tidy],
        validators=[
            DataRequired("Please enter your email address."),
            Email("Please enter a valid email address, like ana@example.com."),
            _length(EMAIL_MAX, "the address"),
        ],
        description=description,
    )


class SignupForm(Form):
    name = StringField(
        "Your name",
        filters=[_tidy],
        validators=[DataRequired(), _length(NAME_MAX, "your name"), single_line],
    )
    email = EmailField(
        "Email",
        filters=[_tidy],
        validators=[
            DataRequired(),
            Email("Please enter a valid email address."),
            _length(EMAIL_MAX, "the address"),
        ],
    )
    password = PasswordField(
        "Password",
        validators=[
            DataRequired(),
            Length(
                min=PASSWORD_MIN,
                max=PASSWORD_MAX,
                message=f"Use at least {PASSWORD_MIN} characters for your password.",
            ),
        ],
    )


class LoginForm(Form):
    email = EmailField(
        "Email",
        filters=[_tidy],
        validators=[DataRequired(), _length(EMAIL_MAX, "the address"), single_line],
    )
    password = PasswordField("Password", validators=[DataRequired(), Length(max=PASSWORD_MAX)])


def _within_reach(moment: datetime | None) -> None:
    """Refuse dates too many years away: typos, and beyond what calendars can add to."""
    if moment is None:
        return
    this_year = datetime.now().year  # noqa: DTZ005 - a wall-clock year, compared loosely
    reach = EVENT_YEARS_AROUND_NOW
    if abs(moment.year - this_year) > reach:
        raise ValidationError(f"Pick a date between {this_year - reach} and {this_year + reach}.")


def _before_or_after(minutes: int, side: str) -> str:
    if minutes == 0:
        return "At the start" if "start" in side else "At the end"
    if minutes % 60:
        return f"{minutes} minutes {side}"
    hours = minutes // 60
    return f"{hours} hour{'' if hours == 1 else 's'} {side}"


class EventForm(Form):
    name = StringField(
        "Event name",
        filters=[_tidy],
        validators=[
            DataRequired("Give the event a name."),
            _length(NAME_MAX, "the name"),
            single_line,
        ],
    )
    starts_at = DateTimeLocalField(
        "Starts",
        validators=[InputRequired("Say when the event starts.")],
        format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    ends_at = DateTimeLocalField(
        "Ends",
        validators=[InputRequired("Say when the event ends.")],
        format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    timezone = StringField(
        "Time zone",
        filters=[_tidy],
        validators=[DataRequired("Pick the event's time zone."), Length(max=TIMEZONE_MAX)],
        description="For example Europe/Berlin or America/New_York.",
    )
    venue = StringField(
        "Venue",
        filters=[_tidy],
        validators=[Optional(), _length(LINE_MAX, "the venue"), single_line],
    )
    description = TextAreaField(
        "Description",
        filters=[_tidy],
        validators=[Optional(), _length(DESCRIPTION_MAX, "the description"), multi_line],
    )
    followup_timing = SelectField(
        "Send the follow-up email",
        choices=[
            SelectChoice("next_morning", "The morning after (09:00 local time)"),
            SelectChoice("at_end", "As soon as the event ends"),
        ],
        default="next_morning",
    )
    nudge_days = SelectField(
        "Remind people who haven't been in touch",
        choices=[
            SelectChoice("7", "A week later"),
            SelectChoice("14", "Two weeks later"),
            SelectChoice("30", "A month later"),
            SelectChoice("0", "Never"),
        ],
        default="7",
    )
    checkin_opens_minutes = SelectField(
        "Check-in opens",
        choices=[
            SelectChoice(str(minutes), _before_or_after(minutes, "before the start"))
            for minutes in limits.CHECKIN_OPENS_CHOICES
        ],
        default=str(limits.CHECKIN_OPENS_MINUTES_BEFORE),
    )
    checkin_closes_minutes = SelectField(
        "Check-in closes",
        choices=[
            SelectChoice(str(minutes), _before_or_after(minutes, "after the end"))
            for minutes in limits.CHECKIN_CLOSES_CHOICES
        ],
        default=str(limits.CHECKIN_CLOSES_MINUTES_AFTER),
    )
    thank_you_note = TextAreaField(
        "Thank-you note",
        filters=[_tidy],
        validators=[
            Optional(),
            _length(limits.THANK_YOU_MAX, "the thank-you note"),
            multi_line,
        ],
        description="A few words from you, printed at the top of every follow-up digest.",
    )
    retention_days = SelectField(
        "Delete attendee data",
        choices=[
            SelectChoice(str(days), f"{days} days after the event ends")
            for days in limits.RETENTION_CHOICES
        ],
        default=str(limits.RETENTION_DAYS),
        description="People who confirmed their email keep their own profile and connections.",
    )

    community = SelectField(
        "Community",
        choices=[SelectChoice("", "None")],
        default="",
        description="A recurring series this event belongs to, such as a monthly brunch club.",
    )

    def offer_communities(self, communities: list[Community]) -> None:
        """Offer the organiser's own communities (and none) for the event to belong to."""
        self.community.choices = [SelectChoice("", "None")] + [
            SelectChoice(str(community.id), community.name) for community in communities
        ]

    def community_id(self) -> int | None:
        """Return the community picked, or None."""
        return int(self.community.data) if self.community.data else None

    def validate_timezone(self, field: Any) -> None:
        if not is_timezone(field.data):
            raise ValidationError("Pick a time zone from the list, such as Europe/London.")

    def validate_starts_at(self, field: Any) -> None:
        _within_reach(field.data)

    def validate_ends_at(self, field: Any) -> None:
        _within_reach(field.data)
        if self.starts_at.data and field.data and field.data <= self.starts_at.data:
            raise ValidationError("The event must end after it starts.")


def _refuse_as_the_domain_does(normalise: Callable[[list[str]], object], values: list[str]) -> None:
    """Run one of domain/profile.py's checks on a field's values; its refusal is the field's."""
    try:
        normalise(values)
    except ProfileError as error:
        raise ValidationError(error.message) from error


class ProfileFields(Form):
    """The profile a person shows the people they meet; shared by check-in and editing."""

    name = StringField(
        "Name",
        filters=[_tidy],
        validators=[
            DataRequired("Please tell people your name."),
            _length(NAME_MAX, "your name"),
            single_line,
        ],
    )
    about = StringField(
        "About me",
        filters=[_tidy],
        validators=[Optional(), _length(LINE_MAX, "\u201cAbout me\u201d"), single_line],
        description="One line, e.g. \u201cBaker by night, backend developer by day\u201d.",
    )
    interests = StringField(
        "Interests",
        filters=[_tidy],
        validators=[Optional(), _length(INTERESTS_TYPED_MAX, "your interests")],
        description=(
            f"Up to {MAX_INTERESTS}, separated by commas: marathons, travel in Asia, sourdough."
        ),
    )
    talk_about = StringField(
        "Happy to talk about",
        filters=[_tidy],
        validators=[Optional(), _length(LINE_MAX, "\u201cHappy to talk about\u201d"), single_line],
    )
    suggested = SelectMultipleField(
        "Popular here",
        choices=[],
        validate_choice=False,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    links = TextAreaField(
        "Links (optional)",
        filters=[_tidy],
        validators=[Optional(), _length(LINKS_TYPED_MAX, "your links"), multi_line],
        description=f"Up to {MAX_LINKS} web addresses, one per line.",
    )

    def offer(self, suggestions: list[str]) -> None:
        """Offer interests already used at the event as tick boxes.

        A form filled from a saved profile keeps the person's own interests, as they typed
        them, in the Interests field, and ticks the boxes of the ones they already have.
        """
        self.suggested.choices = [SelectChoice(tag, tag) for tag in suggestions]
        if self.is_submitted():
            return
        have = {interest_key(tag) for tag in split_interests(self.interests.data or "")}
        self.suggested.data = [tag for tag in suggestions if interest_key(tag) in have]

    def interest_list(self) -> list[str]:
        """Return the tags typed plus the ticked suggestions, as raw strings.

        A tag typed comes first, so its spelling wins over a ticked box with the same key.
        """
        return split_interests(self.interests.data or "") + list(self.suggested.data or [])

    def link_list(self) -> list[str]:
        """Return the links typed, one per line."""
        return (self.links.data or "").splitlines()

    def person_fields(self) -> dict[str, Any]:
        """Return what the person carries from event to event, as the domain takes it."""
        return {
            "name": self.name.data,
            "about": self.about.data or "",
            "talk_about": self.talk_about.data or "",
            "links": self.link_list(),
        }

    @staticmethod
    def data_of(person: Person) -> dict[str, Any]:
        """Return a person's own profile as form data."""
        return {
            "name": person.name,
            "about": person.about,
            "talk_about": person.talk_about,
            "links": "\n".join(person.links or []),
        }

    def validate_interests(self, field: Any) -> None:
        _refuse_as_the_domain_does(normalise_interests, self.interest_list())

    def validate_suggested(self, field: Any) -> None:
        # The boxes offer only interests already in use, but a posted value may be anything;
        # with the Interests field empty its own check (above) does not run.
        _refuse_as_the_domain_does(normalise_interests, list(field.data or []))

    def validate_links(self, field: Any) -> None:
        _refuse_as_the_domain_does(normalise_links, self.link_list())


class CheckInForm(ProfileFields):
    email = _attendee_email(
        "Shared only with people you connect with, unless you choose otherwise."
    )
    share_profile = BooleanField("Show my profile to the people I meet at this event")
    want_followups = BooleanField("Email me a follow-up about the people I connect with here")
    next = HiddenField()

    @classmethod
    def filled(cls, saved: Profile | None) -> CheckInForm:
        """Return the form, filled with a saved profile on a phone that checked in before."""
        if saved is None or request.method != "GET":
            return cls()
        return cls(
            data={
                "name": saved.name,
                "email": saved.email,
                "about": saved.about,
                "talk_about": saved.talk_about,
                "interests": ", ".join(saved.interests),
                "links": "\n".join(saved.links),
                "share_profile": saved.share_profile,
                "want_followups": saved.want_followups,
            }
        )


VISIBILITY_CHOICES = [
    SelectChoice("everyone", "Everyone at this event"),
    SelectChoice("connections", "Only people I connect with"),
    SelectChoice("nobody", "No one"),
]


def _visibility(label: str) -> SelectField:
    return SelectField(label, choices=VISIBILITY_CHOICES)


class ProfileForm(ProfileFields):
    want_followups = BooleanField("Email me a follow-up about the people I connect with here")
    about_visibility = _visibility("Who sees \u201cAbout me\u201d")
    interests_visibility = _visibility("Who sees my interests")
    talk_visibility = _visibility("Who sees \u201cHappy to talk about\u201d")
    links_visibility = _visibility("Who sees my links")
    email_visibility = _visibility("Who sees my email")

    @classmethod
    def for_badge(cls, attendance: Attendance) -> ProfileForm:
        """Return the form filled with what a person shows at an event, and to whom."""
        return cls(
            data={
                **cls.data_of(attendance.person),
                "interests": ", ".join(interest.name for interest in attendance.interests),
                **{
                    f"{field}_visibility": getattr(attendance, f"{field}_visibility")
                    for field in PROFILE_FIELDS
                },
                "want_followups": attendance.followup_consent_at is not None,
            }
        )

    def visibility(self) -> dict[str, str]:
        """Return the chosen visibility of each profile field."""
        return {field: getattr(self, f"{field}_visibility").data for field in PROFILE_FIELDS}

    def badge_profile(self) -> dict[str, Any]:
        """Return the changes to a badge's profile, as edit_badge_profile takes them."""
        return {
            **self.person_fields(),
            "interests": self.interest_list(),
            "visibility": self.visibility(),
            "want_followups": self.want_followups.data,
        }


class NoteForm(Form):
    note = TextAreaField(
        "Note (only you see it)",
        filters=[_tidy],
        validators=[Optional(), _length(NOTE_MAX, "the note"), multi_line],
        description="What you talked about, e.g. \u201cthe Hanoi night market\u201d.",
    )


class PersonForm(Form):
    """The profile a person carries from event to event, edited on /me."""

    name = ProfileFields.name
    about = ProfileFields.about
    talk_about = ProfileFields.talk_about
    links = ProfileFields.links
    link_list = ProfileFields.link_list
    person_fields = ProfileFields.person_fields
    data_of = ProfileFields.data_of
    validate_links = ProfileFields.validate_links


class LinkConsentForm(Form):
    """The consent choices beside a sign-in link's one tap that checks a person in."""

    share_profile = BooleanField("Show my profile to people here")
    want_followups = BooleanField("Email me follow-ups")

    @classmethod
    def filled(cls, saved: Profile | None) -> LinkConsentForm:
        """Return the form, set as last time on the page that asks."""
        if saved is None or request.method != "GET":
            return cls()
        return cls(
            data={"share_profile": saved.share_profile, "want_followups": saved.want_followups}
        )

    def choices(self) -> dict[str, bool]:
        """Return the choices sent, as sign_in_with_link takes them."""
        return {
            "share_profile": bool(self.share_profile.data),
            "want_followups": bool(self.want_followups.data),
        }


class SignInRequestForm(Form):
    email = _attendee_email()


class DeleteMeForm(Form):
    confirm = BooleanField(
        "Yes, delete my profile, my check-ins and my connections everywhere",
        validators=[InputRequired("Tick the box to confirm.")],
    )


class DeleteEventForm(Form):
    name = StringField(
        "Type the event's name to confirm",
        filters=[_tidy],
        validators=[DataRequired("Type the event's name to confirm."), _length(NAME_MAX, "it")],
    )

    def __init__(self, event_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.event_name = event_name

    def validate_name(self, field: Any) -> None:
        """Refuse anything but the event's own name, so a slip of the hand deletes nothing."""
        if _as_shown(field.data) != _as_shown(self.event_name):
            raise ValidationError("That isn't the event's name: type it exactly as shown.")


def _as_shown(text: str) -> str:
    """Return text as a page shows it: spaces run together, accents composed, and no
    direction controls, so a name typed or copied as shown matches the one stored."""
    return " ".join(unicodedata.normalize("NFC", without_direction_controls(text)).split())


class CommunityForm(Form):
    name = StringField(
        "Community name",
        filters=[_tidy],
        validators=[
            DataRequired("Give the community a name."),
            _length(NAME_MAX, "the name"),
            single_line,
        ],
    )
    description = TextAreaField(
        "Description",
        filters=[_tidy],
        validators=[Optional(), _length(DESCRIPTION_MAX, "the description"), multi_line],
    )


class AttachEventForm(Form):
    event = SelectField("Add one of your events", choices=[])

    def offer(self, events: list[Event]) -> None:
        """Offer the organiser's events that are not in the community yet, each with its
        date in its own time zone ("Sunday Brunch, Sun 14 Dec 2026")."""
        self.event.choices = [
            SelectChoice(str(event.id), f"{event.name}, {_day(event)}") for event in events
        ]


def _day(event: Event) -> str:
    starts = local_time(event, event.starts_at)
    return f"{starts:%a} {starts.day} {starts:%b %Y}"


class InviteForm(Form):
    """The owner invites someone into the event's team."""

    email = EmailField(
        "Their email",
        filters=[_tidy],
        validators=[
            DataRequired("Type the address to send the invitation to."),
            Email("Please enter a valid email address, like ana@example.com."),
            _length(EMAIL_MAX, "the address"),
        ],
    )
    role = SelectField(
        "Role",
        choices=[
            SelectChoice(
                "organiser", "Co-organiser: everything but deleting the event or the team"
            ),
            SelectChoice("door", "Door staff: the door desk and the attendee list only"),
        ],
    )


class DoorCheckInForm(Form):
    """Door staff check someone in by hand: a name, and if they like an email and interests."""

    # Staff type someone else's name: the messages speak of that person, not of "your name".
    name = StringField(
        "Name",
        filters=[_tidy],
        validators=[
            DataRequired("Type the name of the person you are checking in."),
            _length(NAME_MAX, "their name"),
            single_line,
        ],
    )
    email = EmailField(
        "Email (optional)",
        filters=[_tidy],
        validators=[
            Optional(),
            Email("Please enter a valid email address, like ana@example.com."),
            _length(EMAIL_MAX, "the address"),
        ],
        description="Checks the same person in only once; without it, nothing is ever emailed.",
    )
    interests = ProfileFields.interests
    share_profile = BooleanField("They agree to show their interests to the people they meet")
    want_followups = BooleanField(
        "They want a follow-up email (we first ask them to confirm the address)"
    )
    suggested = ProfileFields.suggested
    offer = ProfileFields.offer
    interest_list = ProfileFields.interest_list
    validate_interests = ProfileFields.validate_interests
    validate_suggested = ProfileFields.validate_suggested


class BadgeLookupForm(Form):
    """A scanned or pasted badge link, for the door desk to say whose badge it is."""

    code = StringField(
        "Badge link",
        filters=[_tidy],
        validators=[DataRequired("Scan a badge or paste its link."), Length(max=600)],
    )

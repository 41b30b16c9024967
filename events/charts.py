"""Arrivals per hour, drawn on the server as SVG (no charting script, no CDN).

An arrival is a person's first pass in on a local day of the company's zone, counted in
the hour it happened; a week's chart adds up its days. The geometry is computed here and the
template only draws it, so the page needs no script and the Content-Security-Policy no
exception.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from accounts.models import Company
from events.attendance import attendance_days, company_today

WIDTH = 480
HEIGHT = 160
TOP = 12
BOTTOM = 22  # room for the hour labels
LEFT = 4
FIRST_HOUR, LAST_HOUR = 6, 20  # always shown; earlier or later hours only when they have arrivals


@dataclass(frozen=True)
class Bar:
    hour: int
    count: int
    x: float
    y: float
    width: float
    height: float
    label_x: float
    count_y: float


@dataclass(frozen=True)
class HourChart:
    title: str
    bars: list[Bar]
    total: int
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = HEIGHT - BOTTOM
    label_y: float = HEIGHT - 6


def arrivals_by_hour(*, company: Company, date_from: datetime.date, date_to: datetime.date) -> list[int]:
    """24 counts: how many person-days of the range had their first pass in in each local hour."""
    counts = [0] * 24
    for row in attendance_days(company=company, date_from=date_from, date_to=date_to):
        if row.first_in is not None:
            counts[row.first_in.hour] += 1
    return counts


def hour_chart(counts: list[int], title: str) -> HourChart:
    used = [hour for hour, count in enumerate(counts) if count]
    first = min([FIRST_HOUR, *used])
    last = max([LAST_HOUR, *used])
    hours = list(range(first, last + 1))
    peak = max(counts) or 1
    slot = (WIDTH - LEFT * 2) / len(hours)
    plot = HEIGHT - TOP - BOTTOM
    bars = []
    for index, hour in enumerate(hours):
        height = plot * counts[hour] / peak
        x = LEFT + index * slot
        bars.append(
            Bar(
                hour=hour,
                count=counts[hour],
                x=round(x + slot * 0.15, 1),
                y=round(TOP + plot - height, 1),
                width=round(slot * 0.7, 1),
                height=round(height, 1),
                label_x=round(x + slot / 2, 1),
                count_y=round(TOP + plot - height - 3, 1),
            )
        )
    return HourChart(title=title, bars=bars, total=sum(counts), peak=max(counts))


def arrival_charts(*, company: Company, today_title: str, week_title: str) -> list[HourChart]:
    """Today's chart and this week's (Monday to today), in the company's zone."""
    today = company_today(company)
    monday = today - datetime.timedelta(days=today.weekday())
    return [
        hour_chart(arrivals_by_hour(company=company, date_from=today, date_to=today), today_title),
        hour_chart(arrivals_by_hour(company=company, date_from=monday, date_to=today), week_title),
    ]

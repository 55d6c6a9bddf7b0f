// The DomIQ chatbot's flow, written against the client generated from openapi.yaml (openapi-typescript types,
// openapi-fetch calls): a prospect asks for a day, is offered its times (or the next day with times when it is
// full), holds one while the prospect thinks it over (nobody else can take it meanwhile), books it with the hold's
// token in the next turn, a second prospect who wants the same time is offered the nearest free ones instead, the
// chatbot reads the tour back, and the prospect cancels. Any answer the description does not promise fails the run,
// and so does a description that no longer fits this code (it does not compile).
//
//   TOUR_BOOKING_URL=http://127.0.0.1:8080 TOUR_BOOKING_API_KEY=... TOUR_BOOKING_PROPERTY=... node dist/sample.js

import createClient from "openapi-fetch";
import type { components, paths } from "./api.js";

type Slot = components["schemas"]["Slot"];
type TourData = components["schemas"]["TourData"];

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const client = createClient<paths>({
  baseUrl: env("TOUR_BOOKING_URL"),
  headers: { "x-api-key": env("TOUR_BOOKING_API_KEY") },
});
const property = env("TOUR_BOOKING_PROPERTY");

function say(step: string, detail: Record<string, unknown>): void {
  console.log(JSON.stringify({ step, ...detail }));
}

function fail(why: string): never {
  throw new Error(why);
}

/** A weekday `ahead` days from today, as the property's calendar date (YYYY-MM-DD). */
function weekdayAhead(ahead: number): string {
  const day = new Date(Date.now() + ahead * 86_400_000);
  while (day.getUTCDay() === 0 || day.getUTCDay() === 6) day.setUTCDate(day.getUTCDate() + 1);
  return day.toISOString().slice(0, 10);
}

/** The times offered for `date`, or for the next date that has any. */
async function offer(date: string): Promise<{ date: string; slots: Slot[] }> {
  const { data, error } = await client.GET("/api/resman/tours/availability", {
    params: { query: { property_id: property, date, tour_type: "in_person" } },
  });
  if (!data) fail(`availability: ${error?.error.code}: ${error?.error.message}`);
  if (data.available_slots.length > 0) return { date, slots: data.available_slots };
  if (!data.next_available_date) fail(`no time is free on ${date} or after`);
  say("the day is full; the chatbot offers the next day with times", { date, next: data.next_available_date });
  return offer(data.next_available_date);
}

function tourData(who: string, date: string, slot: Slot): TourData {
  return {
    prospect_name: `Sample ${who}`,
    prospect_email: `sample.${who.toLowerCase()}@example.com`,
    prospect_phone: "(512) 555-0177",
    tour_type: "in_person",
    preferred_date: date,
    // The slot's local wall time: `2026-12-01T10:00:00-06:00` -> `10:00`.
    preferred_time: slot.time.slice(11, 16),
    property_id: property,
    unit_preferences: ["2 bedrooms"],
  };
}

async function main(): Promise<void> {
  const run = Date.now().toString(36);
  const { date, slots } = await offer(weekdayAhead(4));
  const first = slots[0] ?? fail("no slot offered");
  say("availability", { date, offered: slots.length, first: first.time, with: first.staff_member });

  // Ana picks the first time: it is held for her conversation until she confirms in her next message.
  const conversation = `sample-${run}-ana`;
  const time = first.time.slice(11, 16);
  const held = await client.POST("/api/resman/tours/holds", {
    body: { conversation_id: conversation, property_id: property, tour_type: "in_person", date, time,
            staff_member_id: first.staff_member_id ?? null },
  });
  const hold = held.data ?? fail(`hold: ${held.error?.error.code}: ${held.error?.error.message}`);
  say("held", { at: hold.slot.time, with: hold.slot.staff_member, until: hold.held_until });

  // Meanwhile another conversation asks for the same time with the same agent: it is not theirs to hold.
  const rival = await client.POST("/api/resman/tours/holds", {
    body: { conversation_id: `sample-${run}-rival`, property_id: property, tour_type: "in_person", date, time,
            staff_member_id: first.staff_member_id ?? null },
  });
  if (rival.response.status !== 409 || rival.error?.error.code !== "slot_taken") {
    fail(`a held slot was held again: ${rival.response.status}`);
  }
  say("the held time is not offered to another conversation", { status: rival.response.status });

  const booked = await client.POST("/api/resman/tours/book", {
    params: { header: { "Idempotency-Key": `sample-${run}-ana` } },
    body: { conversation_id: conversation, tour_data: tourData("Ana", date, first), hold_token: hold.hold_token },
  });
  const tour = booked.data ?? fail(`booking: ${booked.error?.error.code}: ${booked.error?.error.message}`);
  if (tour.staff_member_id !== hold.slot.staff_member_id) fail("the booking did not get the held slot");
  say("booked", { appointment_id: tour.appointment_id, at: tour.confirmed_datetime, sync: tour.sync_status });

  // Everyone who gives tours at that time is taken by others until the time is full: the next prospect is offered
  // the nearest free times instead (409 slot_taken with alternatives).
  let alternatives: Slot[] = [];
  for (let n = 0; n < 10 && alternatives.length === 0; n += 1) {
    const again = await client.POST("/api/resman/tours/book", {
      body: { conversation_id: `sample-${run}-${n}`, tour_data: tourData(`Guest${n}`, date, first) },
    });
    if (again.response.status === 409) {
      if (again.error?.error.code !== "slot_taken") fail(`409 but ${again.error?.error.code}`);
      alternatives = again.error.error.alternatives ?? [];
    } else if (!again.data) {
      fail(`another booking: ${again.response.status}`);
    }
  }
  if (alternatives.length === 0) fail("the time never filled up");
  say("that time is full; alternatives offered", { alternatives: alternatives.map((slot) => slot.time) });

  const read = await client.GET("/api/resman/tours/{appointment_id}", {
    params: { path: { appointment_id: tour.appointment_id } },
  });
  const seen = read.data ?? fail(`read back: ${read.error?.error.code}`);
  if (seen.confirmed_datetime !== tour.confirmed_datetime) fail("the tour read back is not the one booked");
  say("read back", { status: seen.status, version: seen.version, history: seen.history.length });

  const cancelled = await client.PUT("/api/resman/tours/{appointment_id}", {
    params: { path: { appointment_id: tour.appointment_id } },
    body: { status: "cancelled" },
  });
  const after = cancelled.data ?? fail(`cancel: ${cancelled.error?.error.code}: ${cancelled.error?.error.message}`);
  if (after.status !== "cancelled") fail(`cancelled, but the tour says ${after.status}`);
  say("cancelled", { status: after.status, version: after.version });
}

main().then(
  () => say("done", {}),
  (error: unknown) => {
    console.error(`sample failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);

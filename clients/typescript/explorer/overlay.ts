/**
 * Rooms drawn over the blueprint. The result's polygons carry no unit or frame (examples/result.json has
 * metres, judging by `area_m2`), so: coordinates all within 0..1 are fractions of the image; anything
 * else is fitted, keeping its proportions, from the origin to the rooms' furthest corner onto the image.
 * Without the image (a PDF, or a job from another session) the same drawing goes on a blank sheet.
 */
import type { JobResult, Room } from "../src/index.js";

const SVG = "http://www.w3.org/2000/svg";

export interface Frame {
  width: number;
  height: number;
}

type Point = [number, number];

function polygonOf(room: Room): Point[] {
  const raw = Array.isArray(room.polygon) ? room.polygon : [];
  return raw.filter(
    (p): p is Point => Array.isArray(p) && p.length >= 2 && Number.isFinite(p[0]) && Number.isFinite(p[1]),
  );
}

/** A function from result coordinates to the frame's (image pixels, or the sheet's units). */
export function projection(rooms: Room[], frame: Frame): (p: Point) => Point {
  const points = rooms.flatMap(polygonOf);
  const normalised = points.length > 0 && points.every(([x, y]) => x >= 0 && x <= 1 && y >= 0 && y <= 1);
  if (normalised) return ([x, y]) => [x * frame.width, y * frame.height];
  const maxX = Math.max(1e-9, ...points.map(([x]) => x));
  const maxY = Math.max(1e-9, ...points.map(([, y]) => y));
  const scale = Math.min(frame.width / maxX, frame.height / maxY);
  return ([x, y]) => [x * scale, y * scale];
}

/** The rooms as an `<svg>` in the frame's coordinates (laid over an image of that size, or alone). */
export function roomsSvg(result: JobResult, frame: Frame, className: string): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${frame.width} ${frame.height}`);
  svg.setAttribute("class", className);
  svg.setAttribute("data-testid", "overlay");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${result.rooms.length} rooms`);
  const project = projection(result.rooms, frame);
  for (const room of result.rooms) {
    const points = polygonOf(room).map(project);
    if (points.length < 3) continue;
    const shape = document.createElementNS(SVG, "polygon");
    shape.setAttribute("class", "room");
    shape.setAttribute("points", points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "));
    shape.setAttribute("data-room", String(room.id ?? ""));
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${room.label ?? room.id ?? "room"}${room.area_m2 ? ` — ${room.area_m2} m²` : ""}`;
    shape.append(title);
    svg.append(shape);
    const cx = points.reduce((sum, [x]) => sum + x, 0) / points.length;
    const cy = points.reduce((sum, [, y]) => sum + y, 0) / points.length;
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("class", "room-label");
    label.setAttribute("x", cx.toFixed(1));
    label.setAttribute("y", cy.toFixed(1));
    label.setAttribute("text-anchor", "middle");
    label.textContent = String(room.label ?? room.id ?? "").replace(/_/g, " ");
    svg.append(label);
  }
  return svg;
}

/** The sheet for a drawing without an image: the rooms' extent, at 60 units per result unit. */
export function sheetFrame(rooms: Room[]): Frame {
  const points = rooms.flatMap(polygonOf);
  const maxX = Math.max(1, ...points.map(([x]) => x));
  const maxY = Math.max(1, ...points.map(([, y]) => y));
  const unit = maxX <= 1 && maxY <= 1 ? 480 : 60;
  return { width: Math.ceil(maxX * unit), height: Math.ceil(maxY * unit) };
}

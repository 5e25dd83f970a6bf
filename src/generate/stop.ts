/**
 * Releases streamed text while watching for stop strings. Text that could
 * still be the start of a stop string is held back until the next piece
 * shows that it is not, so a stop string never reaches the caller, even when
 * it arrives split over several tokens.
 */
export class StopStringFilter {
  private held = "";
  private readonly stops: string[];

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** Adds a piece; returns the text now safe to release and whether a stop string was completed. */
  push(piece: string): { text: string; stopped: boolean } {
    this.held += piece;
    let first = -1;
    for (const s of this.stops) {
      const at = this.held.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      const text = this.held.slice(0, first);
      this.held = "";
      return { text, stopped: true };
    }
    const cut = this.holdFrom();
    const text = this.held.slice(0, cut);
    this.held = this.held.slice(cut);
    return { text, stopped: false };
  }

  /** At the end of generation nothing more can complete a stop string: release what is held. */
  end(): string {
    const text = this.held;
    this.held = "";
    return text;
  }

  /** The earliest index from which the held text is a proper prefix of some stop string. */
  private holdFrom(): number {
    const h = this.held;
    for (let i = 0; i < h.length; i++) {
      const tail = h.slice(i);
      if (this.stops.some((s) => s.length > tail.length && s.startsWith(tail))) return i;
    }
    return h.length;
  }
}

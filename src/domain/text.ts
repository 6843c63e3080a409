// Validation of free-text input, shared by every field that takes text.
import { InvalidInputError } from './errors.ts';

// C0 and C1 control characters and DEL. NUL cannot be stored in PostgreSQL
// text at all; the others have no business in names or keys.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/u;

export interface TextRule {
  field: string;
  /** Inclusive bounds, in Unicode code points, after trimming. */
  min: number;
  max: number;
}

/**
 * Trims `value` and checks it: well-formed Unicode (no lone surrogates, which
 * could not be stored and returned verbatim), no control characters, length
 * within bounds. Returns the trimmed value.
 */
export function cleanText(value: string, rule: TextRule): string {
  const trimmed = value.trim();
  if (!trimmed.isWellFormed()) {
    throw new InvalidInputError(rule.field, `${rule.field} must be valid Unicode text.`);
  }
  if (CONTROL_CHARACTERS.test(trimmed)) {
    throw new InvalidInputError(rule.field, `${rule.field} must not contain control characters.`);
  }
  const length = [...trimmed].length;
  if (length < rule.min) {
    throw new InvalidInputError(
      rule.field,
      rule.min === 1 ? `${rule.field} must not be empty.` : `${rule.field} must be at least ${rule.min} characters.`,
    );
  }
  if (length > rule.max) {
    throw new InvalidInputError(rule.field, `${rule.field} must be at most ${rule.max} characters (got ${length}).`);
  }
  return trimmed;
}

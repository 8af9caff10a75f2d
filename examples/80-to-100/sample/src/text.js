// Small text helpers. The 80-to-100 example adds a slug() function beside these.

/** The words of `text`: runs of letters and digits, in order. */
export function words(text) {
  return text.match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** `word` with its first letter in upper case. */
export function capitalize(word) {
  return word.length === 0 ? word : word[0].toUpperCase() + word.slice(1);
}

/** Every word of `text` capitalized, joined by single spaces. */
export function titleCase(text) {
  return words(text).map(capitalize).join(' ');
}

/**
 * Text from a customer's API is written for screens, not for speech. The seed (Netsantral) tells
 * its customers not to send ALL-CAPS words, because its TTS spells them out letter by letter;
 * espeak-ng does the same with many of them ("CALL US" → "call U S"). Instead of passing that
 * rule on to every integrator, such words are spoken as ordinary capitalised words, lower-cased
 * by the rules of the language (Turkish "YILMAZ" → "Yılmaz", not "Yilmaz").
 */

const CAPS_WORD = /[\p{L}\p{M}]+(?:['’][\p{L}\p{M}]+)*/gu;
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]+/g;

export function normaliseForSpeech(text: string, language: string): string {
  const locale = safeLocale(language);
  return (
    text
      .replace(CONTROL, ' ')
      // masked names ("Sayın A** M**") would be read as "star star"
      .replace(/\*{2,}/g, '')
      .replace(CAPS_WORD, (word) => {
        const letters = Array.from(word).filter((ch) => /\p{L}/u.test(ch));
        if (letters.length < 2) return word;
        const cased = letters.filter((ch) => ch.toLocaleLowerCase(locale) !== ch.toLocaleUpperCase(locale));
        if (cased.length < 2 || cased.some((ch) => ch !== ch.toLocaleUpperCase(locale))) return word;
        const [first, ...rest] = Array.from(word);
        return first! + rest.join('').toLocaleLowerCase(locale);
      })
  );
}

function safeLocale(language: string): string | undefined {
  try {
    return Intl.getCanonicalLocales(language.replace(/_/g, '-'))[0];
  } catch {
    return undefined;
  }
}

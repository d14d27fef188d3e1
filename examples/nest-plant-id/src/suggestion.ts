/** One candidate species, as a provider client returns it. */
export interface Suggestion {
  scientificName: string;
  commonName: string | undefined;
  /** Family, when the provider knows it (PlantNet does). */
  family: string | undefined;
  /** Confidence from 0 to 1. */
  probability: number;
}

// What an import learns about an image's format (an image's `details`): plain data without runtime code, so
// that the web console reads the same types as the content library that writes them.

export interface IsoInfo {
  volumeId: string;
  systemId?: string;
  volumeSetId?: string;
  publisherId?: string;
  preparerId?: string;
  applicationId?: string;
  /** Volume creation time from the primary volume descriptor, ISO 8601. */
  createdAt?: string;
  /** Bytes the volume declares (volume space size × logical block size); the file is at least this long. */
  volumeBytes: number;
  /** Firmware that can boot it (El Torito): 'bios', 'uefi', or another platform's name. */
  bootPlatforms: string[];
  /** An MBR boot signature too (isohybrid): the image can be written to a USB stick or disk as it is. */
  hybrid: boolean;
  /** A Joliet supplementary descriptor (long Unicode names, Windows media). */
  joliet: boolean;
  /** A UDF volume recognition sequence (Windows installation media are UDF bridge discs). */
  udf: boolean;
  [k: string]: unknown;
}

export interface WimImageInfo {
  index: number;
  name: string;
  description?: string;
  /** Bytes of the files once applied. */
  totalBytes?: number;
  fileCount?: number;
  directoryCount?: number;
  /** As wimlib names it: x86, x86_64, ARM, ARM64, ia64. */
  architecture?: string;
  displayName?: string;
  editionId?: string;
  productName?: string;
  languages?: string[];
  /** Windows version as major.minor.build, e.g. 10.0.19045. */
  windowsVersion?: string;
  /** The image Windows boots from (boot.wim's Windows PE). */
  bootable?: boolean;
}

export interface WimInfo {
  images: WimImageInfo[];
  compression?: string;
}

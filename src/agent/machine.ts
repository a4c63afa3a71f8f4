// Facts about this machine that become built-in variables (_DeviceName, _MACAddress, _SerialNumber, _UUID …).
import { readFileSync } from 'node:fs';
import { arch, hostname, networkInterfaces } from 'node:os';

export interface MachineFacts {
  deviceName: string;
  /** Physical interfaces' MAC addresses, upper case with colons, first one = _MACAddress. */
  macAddresses: string[];
  serialNumber: string | null;
  uuid: string | null;
  architecture: string;
}

function dmi(field: string): string | null {
  try {
    const value = readFileSync(`/sys/class/dmi/id/${field}`, 'utf8').trim();
    // Firmware fills unset fields with placeholders; those identify nothing.
    return value && !/^(none|not specified|default string|to be filled by o\.e\.m\.|0+)$/i.test(value) ? value : null;
  } catch {
    return null; // no DMI (VMs without SMBIOS, ARM boards) or not readable without root
  }
}

export function gatherMachineFacts(): MachineFacts {
  const macs = new Set<string>();
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (!a.internal && a.mac !== '00:00:00:00:00:00' && !name.startsWith('veth') && !name.startsWith('docker')) macs.add(a.mac.toUpperCase());
    }
  }
  return {
    deviceName: hostname().split('.')[0]!,
    macAddresses: [...macs].sort(),
    serialNumber: dmi('product_serial'),
    uuid: dmi('product_uuid')?.toUpperCase() ?? null,
    architecture: arch() === 'x64' ? 'x64' : arch() === 'ia32' ? 'x86' : arch(),
  };
}

/** The built-in variables from machine facts; unknown facts stay undefined rather than empty. */
export function machineVariables(facts: MachineFacts): Record<string, string> {
  const out: Record<string, string> = { _DeviceName: facts.deviceName, _Architecture: facts.architecture };
  if (facts.macAddresses.length) {
    out._MACAddress = facts.macAddresses[0]!;
    out._MACAddresses = facts.macAddresses.join(',');
  }
  if (facts.serialNumber) out._SerialNumber = facts.serialNumber;
  if (facts.uuid) out._UUID = facts.uuid;
  return out;
}

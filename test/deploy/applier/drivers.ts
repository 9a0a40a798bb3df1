/**
 * Resource type → driver. A type not listed here is refused: the applier translates only what
 * it knows how to apply faithfully.
 */
import { commandDriver } from './command-driver.ts';
import { containerDriver } from './container-driver.ts';
import { networkDriver, providerDriver, randomDriver, volumeDriver } from './docker-drivers.ts';
import type { Driver } from './driver.ts';
import { imageDriver, remoteImageDriver } from './image-drivers.ts';
import { ApplierRefusal, type ResourceRef } from './inputs.ts';

const DRIVERS: Record<string, Driver> = {
  'pulumi:providers:docker': providerDriver,
  'docker:index/network:Network': networkDriver,
  'docker:index/volume:Volume': volumeDriver,
  'docker:index/remoteImage:RemoteImage': remoteImageDriver,
  'docker:index/image:Image': imageDriver,
  'docker:index/container:Container': containerDriver,
  'command:local:Command': commandDriver,
  'random:index/randomPassword:RandomPassword': randomDriver,
  'random:index/randomBytes:RandomBytes': randomDriver,
};

export function driverFor(r: ResourceRef): Driver {
  const driver = DRIVERS[r.type];
  if (!driver)
    throw new ApplierRefusal(`applier: ${r.type} "${r.name}": this resource type is not translated`);
  return driver;
}

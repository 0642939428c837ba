-- AlterTable
ALTER TABLE "authority" ADD COLUMN     "pds_service" BOOLEAN NOT NULL DEFAULT false;

-- AlterTable
ALTER TABLE "space" ADD COLUMN     "dpop_credential_ttl_sec" INTEGER NOT NULL DEFAULT 300;


-- AlterTable
ALTER TABLE "authority" ADD COLUMN     "handle" TEXT,
ADD COLUMN     "origin" TEXT NOT NULL DEFAULT 'registered',
ADD COLUMN     "owner_rotation_key" TEXT;

